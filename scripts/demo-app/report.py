"""A stdlib-heavy command-line program, the README demo's workload: reads
a generated sales log, and prints a report using a broad slice of the
standard library (argparse, csv, json, sqlite3, decimal, statistics,
datetime, dataclasses, typing, email, xml, html, urllib, logging, ...)."""
import argparse
import collections
import csv
import dataclasses
import datetime
import decimal
import email.message
import email.utils
import html
import io
import json
import logging
import pathlib
import random
import sqlite3
import statistics
import string
import textwrap
import typing
import urllib.parse
import xml.etree.ElementTree as ElementTree
import zipfile

log = logging.getLogger("report")


@dataclasses.dataclass(frozen=True)
class Sale:
    day: datetime.date
    region: str
    product: str
    amount: decimal.Decimal


def generate(count: int, seed: int) -> typing.List[Sale]:
    generator = random.Random(seed)
    start = datetime.date(2026, 1, 1)
    return [Sale(start + datetime.timedelta(days=generator.randrange(365)),
                 generator.choice(["north", "south", "east", "west"]),
                 generator.choice(string.ascii_uppercase[:6]),
                 decimal.Decimal(generator.randrange(100, 100000)) / 100)
            for _ in range(count)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    sales = generate(options.sales, options.seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for sale in sales:
        writer.writerow([sale.day.isoformat(), sale.region, sale.product, sale.amount])
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))

    database = sqlite3.connect(":memory:")
    database.execute("create table sales (day text, region text, product text, amount text)")
    database.executemany("insert into sales values (?, ?, ?, ?)", rows)
    by_region = dict(database.execute(
        "select region, count(*) from sales group by region order by region").fetchall())

    totals = collections.defaultdict(decimal.Decimal)
    for sale in sales:
        totals[sale.product] += sale.amount
    amounts = [float(sale.amount) for sale in sales]

    root = ElementTree.Element("report")
    for product, total in sorted(totals.items()):
        ElementTree.SubElement(root, "product", name=product, total=str(total))
    message = email.message.EmailMessage()
    message["Subject"] = f"Sales report ({len(sales)} sales)"
    message["Date"] = email.utils.format_datetime(datetime.datetime(2026, 11, 22, tzinfo=datetime.timezone.utc))
    message.set_content(json.dumps({"regions": by_region,
                                    "mean": round(statistics.mean(amounts), 2),
                                    "median": round(statistics.median(amounts), 2)}, sort_keys=True))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("report.xml", ElementTree.tostring(root))

    print(message["Subject"])
    print(message.get_content().strip())
    print(textwrap.fill(html.escape(ElementTree.tostring(root, encoding="unicode")), 72))
    print(urllib.parse.urlencode(sorted(by_region.items())), pathlib.PurePosixPath("out") / "report.zip",
          len(archive.getvalue()) > 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

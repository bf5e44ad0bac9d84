"""Opens and uses damaged archives in one process; run by test_bad_archives.py.

    abuse.py variants GOOD OTHER WORKDIR SEED COUNT
        GOOD damaged in every way (truncations, flips, splices with OTHER):
        each must raise ArchiveError with a one-line reason or load modules
        identical to GOOD's. Prints one outcome per line, then a summary.
    abuse.py open PATH
        Prints the error of opening and loading PATH (its class: its
        message), or "ok".
    abuse.py in-use GOOD OTHER WORKDIR
        Loads modules while the archive file is truncated, rewritten in
        place (its size and mtime kept) and replaced on disk.
    abuse.py resealed GOOD WORKDIR SEED COUNT
        GOOD damaged inside one part with every checksum made to hold again,
        as no corruption does: only the reader's own checks of what it walks
        stand. Each module must load or raise ArchiveError with a one-line
        reason; what loads is not compared (an archive is as trusted as the
        code it holds). Prints one outcome per line, then a summary.
"""
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import codeshare.archive  # noqa: E402
from codeshare.archive import ArchiveError  # noqa: E402
from archive_layout import parts, reseal  # noqa: E402
from codecompare import differences  # noqa: E402


def use(path, expected):
    """'identical', or 'error: <reason>'; anything else is a failure."""
    try:
        archive = codeshare.archive.open(path)
        for name in archive.names:
            if differences(archive.code(name), expected[name]):
                return f"DIFFERENT {name}"
        if sorted(archive.names) != sorted(expected):
            return "DIFFERENT names"
        return "identical"
    except ArchiveError as error:
        message = str(error)
        if "\n" in message or not message:
            return f"BAD MESSAGE {message!r}"
        return "error: " + message.split(": ")[-1]


def variants(good, other, workdir, seed, count):
    with open(good, "rb") as file:
        data = file.read()
    with open(other, "rb") as file:
        donor = file.read()
    expected = {name: archive_code for name, archive_code in
                ((n, codeshare.archive.open(good).code(n)) for n in codeshare.archive.open(good).names)}
    generator = random.Random(seed)
    cases = [("empty", b"")]
    cases += [(f"truncated at {size}", data[:size]) for size in range(0, len(data), 4096)]
    cases += [(f"truncated at {size}", data[:size])
              for size in (generator.randrange(len(data)) for _ in range(100))]
    cases.append(("one byte more", data + b"\0"))
    for _ in range(count):
        damaged = bytearray(data)
        kind = generator.choice(["flip", "flips", "splice", "insert", "delete"])
        at = generator.randrange(len(data))
        if kind == "flip":
            damaged[at] ^= 1 << generator.randrange(8)
        elif kind == "flips":
            for _ in range(generator.randrange(2, 20)):
                damaged[generator.randrange(len(data))] = generator.randrange(256)
        elif kind == "splice":
            start = generator.randrange(len(donor))
            piece = donor[start:start + generator.randrange(1, 4096)]
            damaged[at:at + len(piece)] = piece
        elif kind == "insert":
            damaged[at:at] = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 64)))
        else:
            del damaged[at:at + generator.randrange(1, 64)]
        cases.append((f"{kind} at {at}", bytes(damaged)))
    outcomes = {}
    path = os.path.join(workdir, "damaged.csa")
    for label, content in cases:
        with open(path, "wb") as file:
            file.write(content)
        print(label, flush=True)  # the last line names the culprit of a crash
        outcome = use(path, expected)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if not outcome.startswith(("error: ", "identical")):
            print(f"FAILED {label}: {outcome}")
    print("SUMMARY", len(cases), sorted(outcomes.items()))


def resealed(good, workdir, seed, count):
    with open(good, "rb") as file:
        data = file.read()
    every_part = parts(data)
    generator = random.Random(seed)
    outcomes = {}
    path = os.path.join(workdir, "resealed.csa")
    for _ in range(count):
        damaged = bytearray(data)
        part = generator.choice(every_part)
        label, start, length = part[:3]
        at = start + generator.randrange(length)
        kind = generator.choice(["flip", "byte", "word"])
        if kind == "flip":
            damaged[at] ^= 1 << generator.randrange(8)
        elif kind == "byte":
            damaged[at] = generator.randrange(256)
        else:
            # A whole aligned word: a count, a length, a ref, a type.
            at = start + (at - start & ~7)
            value = generator.choice([0, generator.randrange(-64, 4096), generator.getrandbits(64)])
            end = min(at + 8, start + length)
            damaged[at:end] = (value & (1 << 64) - 1).to_bytes(8, "little")[:end - at]
        reseal(damaged, part)
        with open(path, "wb") as file:
            file.write(damaged)
        case = f"{kind} in {label} at +{at - start}"
        print(case, flush=True)  # the last line names the culprit of a crash
        try:
            archive = codeshare.archive.open(path)
            for name in archive.names:
                archive.code(name)
            outcome = "loaded"
        except ArchiveError as error:
            message = str(error)
            outcome = "error: " + message.split(": ")[-1] if message and "\n" not in message else f"BAD MESSAGE {message!r}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome.startswith("BAD"):
            print(f"FAILED {case}: {outcome}")
    print("SUMMARY", count, sorted(outcomes.items()))


def open_and_use(path):
    try:
        archive = codeshare.archive.open(path)
        for name in archive.names:
            archive.code(name)
        print("ok")
    except ArchiveError as error:
        print(f"{type(error).__name__}: {error}")


def in_use(good, other, workdir):
    path = os.path.join(workdir, "live.csa")
    shutil.copyfile(good, path)
    archive = codeshare.archive.open(path)
    names = archive.names
    archive.code(names[0])
    status = os.stat(path)
    # Truncated in place: no longer the file the index came from, an error
    # (and a read that comes up short is one too, never SIGBUS).
    os.truncate(path, status.st_size // 3)
    results = [use_one(archive, name) for name in names[1:3]]
    # Rewritten in place with other bytes, its size and mtime put back: the
    # checksums refuse them.
    with open(other, "rb") as source, open(path, "r+b") as target:
        target.write(source.read()[:status.st_size].ljust(status.st_size, b"\0"))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    results += [use_one(archive, name) for name in names[3:5]]
    # Replaced on disk (rename, as a new dump lands): an open archive
    # refuses the new file's parts, never mixing them with its index.
    second = os.path.join(workdir, "second.csa")
    shutil.copyfile(good, second)
    before = codeshare.archive.open(second)
    replacement = os.path.join(workdir, "replacement.csa")
    shutil.copyfile(other, replacement)
    os.replace(replacement, second)
    results += [use_one(before, name) for name in names]
    print(" | ".join(results))


def use_one(archive, name):
    try:
        code = archive.code(name)
        with open(name, "rb") as file:
            if differences(code, compile(file.read(), name, "exec")):
                return f"DIFFERENT {name}"
        return "ok"
    except ArchiveError as error:
        return "error: " + str(error).split(": ")[-1]


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "variants":
        variants(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif command == "open":
        open_and_use(sys.argv[2])
    elif command == "resealed":
        resealed(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        in_use(sys.argv[2], sys.argv[3], sys.argv[4])

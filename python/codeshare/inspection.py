"""`python -m codeshare info` and `verify`: what an archive holds, and
which of its entries would not be served now."""
import os
import sys
import time

from .archive import Archive, ArchiveError, file_unchanged
from .resolution import Resolver, manifest_problem, module_record


def _open(path):
    try:
        return Archive(path)
    except ArchiveError as error:
        print(f"codeshare: {error}", file=sys.stderr)
        return None


def info(path):
    archive = _open(path)
    if archive is None:
        return 1
    header = archive.header
    try:
        by_type, sizes, pool = archive.census()
    except ArchiveError as error:
        print(f"codeshare: {error}", file=sys.stderr)
        return 1
    print(f"archive:      {archive.path}")
    print(f"format:       codeshare schema {header['schema_version']}, {header['file_size']:,} bytes")
    print(f"interpreter:  Python {header['python_version']}")
    print(f"flags:        -O level {header['optimization_level']}, "
          f"debug ranges {'on' if header['debug_ranges'] else 'off (-X no_debug_ranges)'}")
    print(f"created:      {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(header['created']))}")
    manifest = archive.manifest if isinstance(archive.manifest, dict) else {}
    print(f"modules:      {len(archive)} from source, "
          f"{len(manifest.get('extensions', ()))} extension-module locations")
    layout = "one program's imports, loaded together" if header["loaded_together"] else "a collection, modules loaded alone"
    print(f"layout:       {layout}")
    program = manifest.get("program")
    if isinstance(program, list) and program and all(type(part) is str for part in program):
        # The program whose runs start reading ahead with the interpreter.
        kind, *target = program
        print(f"dumped for:   {' '.join({'script': [], 'module': ['-m'], 'code': ['-c']}.get(kind, [kind]) + target)}")
    print(f"shared pool:  {pool:,} bytes in {header['chunk_count']} chunks")
    print("objects:")
    for name, (count, size) in sorted(by_type.items(), key=lambda item: -item[1][1]):
        print(f"  {name:8} {count:>9,} objects {size:>13,} bytes")
    print("largest modules:")
    for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:10]:
        print(f"  {size:>11,}  {name}")
    return 0


def verify(path):
    """Every entry that is stale, missing, shadowed or malformed now; exit status 1 if any."""
    archive = _open(path)
    if archive is None:
        return 1
    from _frozen_importlib_external import PathFinder
    manifest = archive.manifest
    problem = manifest_problem(manifest)
    if problem is not None:
        print(f"codeshare: {archive.path}: {problem}", file=sys.stderr)
        return 1
    resolver = Resolver(manifest)
    problems = 0
    saved_path = sys.path[:]
    try:
        for name in archive.names:
            try:
                metadata = archive.metadata(name)
            except ArchiveError as error:
                print(f"malformed {name}: {error}")
                problems += 1
                continue
            record = module_record(metadata, manifest["searches"])
            if record is None:
                print(f"malformed {name}: its metadata is not what `python -m codeshare dump` writes")
                problems += 1
                continue
            origin, package, search_index, entry_index, size, mtime_ns, _, hashed, named = record
            search = manifest["searches"][search_index]
            if not os.path.exists(origin):
                print(f"missing   {name}: {origin} no longer exists")
                problems += 1
                continue
            if not file_unchanged(origin, size, mtime_ns, hashed):
                print(f"stale     {name}: {origin} changed since the dump")
                problems += 1
                continue
            if "." in name:
                spec = PathFinder.find_spec(name, search)
            else:
                sys.path[:] = search
                spec = PathFinder.find_spec(name)
            if spec is None or spec.origin != origin:
                print(f"shadowed  {name}: the recorded search now finds {spec and spec.origin}")
                problems += 1
            else:
                # Still found where recorded, but served after a normal
                # search rather than straight away.
                reason = resolver.why_not(name, search if "." in name else None, search_index, entry_index,
                                          named, origin, package)
                if reason is not None:
                    print(f"searched  {name}: {reason}")
    finally:
        sys.path[:] = saved_path
    total = len(archive)
    print(f"{total - problems} of {total} modules would be served; {problems} stale, missing, shadowed or malformed")
    return 1 if problems else 0

"""The archive's file layout as the tests need it to damage an archive behind
valid checksums: the checksum (Checksum.swift, ported), where each part and
the checksum covering it lie, and where the index's names, metadata and
manifest lie (ArchiveHeader.swift, ArchiveTables.swift). No test should
need more of the format than this."""
import struct

_MASK = (1 << 64) - 1
_PRIME1, _PRIME2, _PRIME3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_HEADER_CHECKSUMMED = 248
_MODULE_RECORD_SIZE, _SEGMENT_DESCRIPTOR_SIZE = 64, 32


def _round(lane, word):
    mixed = ((lane ^ word) * _PRIME1) & _MASK
    return ((mixed << 31) | (mixed >> 33)) & _MASK


def checksum(data):
    """Checksum.of(data), seed 0."""
    a, b, c, d = _PRIME3, _PRIME1, _PRIME2, -_PRIME1 & _MASK
    count = len(data) // 8
    words = struct.unpack_from(f"<{count}Q", data)
    index = 0
    while index + 4 <= count:
        a, b = _round(a, words[index]), _round(b, words[index + 1])
        c, d = _round(c, words[index + 2]), _round(d, words[index + 3])
        index += 4
    for word in words[index:]:
        a = _round(a, word)
    tail = int.from_bytes(data[8 * count:], "little")
    value = (_round(a, tail) * _PRIME2 & _MASK) ^ (_round(b, len(data)) * _PRIME3 & _MASK)
    value = (_round(value, c) * _PRIME2 & _MASK) ^ (_round(d, value) * _PRIME3 & _MASK)
    value ^= value >> 29
    value = value * _PRIME3 & _MASK
    return value ^ (value >> 32)


def parts(data):
    """Each part of the archive `data`: (label, start, length, where its
    checksum lies), module segments and run-once parts, then pool chunks."""
    modules, chunks, tables = struct.unpack_from("<IIQ", data, 152)
    found = []
    for index in range(modules):
        record = tables + _MODULE_RECORD_SIZE * index
        offset, objects_size, _, intern_count = struct.unpack_from("<QIII", data, record)
        length = objects_size + 4 * intern_count
        found.append((f"module {index}", offset, length, record + 24))
        run_once_size = struct.unpack_from("<I", data, record + 32)[0]
        if run_once_size:
            found.append((f"module {index} run-once", offset + (length + 15 & ~15), run_once_size, record + 40))
    for index in range(chunks):
        descriptor = tables + _MODULE_RECORD_SIZE * modules + _SEGMENT_DESCRIPTOR_SIZE * index
        offset, objects_size, _, intern_count = struct.unpack_from("<QIII", data, descriptor)
        found.append((f"chunk {index}", offset, objects_size + 4 * intern_count, descriptor + 24))
    return found


def index_entry(data, which, module=None):
    """(start, length) in `data` of module `module`'s "name" or "metadata",
    or of the archive's "manifest": bytes in the tables' string area."""
    modules, chunks, tables = struct.unpack_from("<IIQ", data, 152)
    strings = tables + _MODULE_RECORD_SIZE * modules + _SEGMENT_DESCRIPTOR_SIZE * chunks
    if which == "manifest":
        offset, length = struct.unpack_from("<II", data, 184)
    else:
        fields = struct.unpack_from("<IIII", data, tables + _MODULE_RECORD_SIZE * module + 48)
        offset, length = fields[:2] if which == "name" else fields[2:]
    return strings + offset, length


def reseal(data, part=None):
    """Makes every checksum of the bytearray `data` hold again after `part`
    (one of `parts`) or the tables changed: the part's, the tables', the
    header's."""
    if part is not None:
        _, start, length, checksum_at = part
        struct.pack_into("<Q", data, checksum_at, checksum(bytes(data[start:start + length])))
    tables, tables_size = struct.unpack_from("<QQ", data, 160)
    struct.pack_into("<Q", data, 176, checksum(bytes(data[tables:tables + tables_size])))
    struct.pack_into("<Q", data, _HEADER_CHECKSUMMED, checksum(bytes(data[:_HEADER_CHECKSUMMED])))

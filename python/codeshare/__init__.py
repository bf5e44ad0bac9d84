"""codeshare: serve CPython 3.11 imports from an archive of live code objects.

`codeshare.archive` reads and writes archives. Importing this package is
cheap and imports nothing else: the start-up hook relies on that.
"""

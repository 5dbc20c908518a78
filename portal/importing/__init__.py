"""The parts of ``portal import`` (see :mod:`portal.importing.bundle` for the entry point).

- :mod:`.errors`: what a rejected bundle reports (line number and reason);
- :mod:`.source`: reading the bundle line by line, with its sha256;
- :mod:`.fields`: parsing and checking one JSON value (text, enum, date, digest, path...);
- :mod:`.schema`: the shape of each record type, checked field by field;
- :mod:`.files`: safe resolution of files under ``--files`` and streaming them into the store;
- :mod:`.records`: per record type, finding an existing row, comparing, building new rows.
"""

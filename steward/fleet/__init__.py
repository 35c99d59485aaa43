"""Fleet management of machines, as Choria's ``machines`` and ``plugins`` watchers do it.

A signed specification lists machines (name, archive source and checksums, a ``match``
expression); a manager machine on every node reads it from a KV key and writes, for each
entry that matches the node, a small machine that downloads and keeps the archive.

    spec.py      the specification: decode, verify the ed25519 signature, the entries
    keys.py      ed25519 key files as Choria writes them (hex seed), permission checks
    matcher.py   an entry's ``match`` over the node's identity and facts
    install.py   render the managing machines and reconcile the machines directory
    pack.py      archives with SHA256SUMS and their checksums (``steward fleet pack``)
"""

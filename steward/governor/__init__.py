"""Choria's network-wide concurrency governors, on JetStream.

A governor is a JetStream stream ``GOVERNOR_<name>`` that keeps at most ``capacity``
messages and refuses more (DiscardNew): a worker takes a slot by publishing to it, gives the
slot back by deleting its message, and a holder that dies loses its slot when the stream's
max age evicts it. The layout is Choria's, so Choria and steward nodes share governors.

- ``names``: a governor's name, stream and subject (no NATS import: the validator uses it)
- ``slots``: ``join``, ``leave`` and ``holding`` (a slot for the length of a block)
- ``watched``: a watcher's ``governor``/``governor_timeout`` (read at load; ``slot_for`` a run)
- ``admin``: ``add``, ``info``, ``names``, ``leases``, ``evict``, ``reset``, ``delete``
- ``jsapi``: the two raw JetStream API calls the others need

Only ``names`` is re-exported here: importing this package must not import the NATS client.
"""

from steward.governor.names import (
    COLLECTIVE,
    campaign_subject,
    check_name,
    name_problem,
    stream_name,
)

__all__ = ["COLLECTIVE", "campaign_subject", "check_name", "name_problem", "stream_name"]

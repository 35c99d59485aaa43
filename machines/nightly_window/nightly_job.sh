#!/bin/sh
# The maintenance job: here it only records that it ran (replace with a
# backup, a log rotation, a package update, ...).
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) nightly job ran in state $MACHINE_STATE" >> job.log

# pool-dump-database / pool-restore-database (a real restore stops the
# server after its fuse; tests/python/test_db_backup.py covers that part).
set -eux
xe network-create name-label=backup-net >/dev/null
xe pool-dump-database file-name=pool.db
head -c 24 pool.db | grep -q "xapi-rs database dump v1"
# A real restore must be forced; a dry run checks and changes nothing.
if xe pool-restore-database file-name=pool.db 2>err; then exit 1; fi
grep -q -- "--force" err
xe pool-restore-database file-name=pool.db dry-run=true | grep -q "Dry-run backup restore successful"
[ "$(xe network-list name-label=backup-net --minimal | tr ',' '\n' | wc -l)" = 1 ]
# A damaged dump is refused.
python3 -c 'import sys; d=bytearray(open("pool.db","rb").read()); d[len(d)//2]^=1; open("bad.db","wb").write(d)'
if xe pool-restore-database file-name=bad.db dry-run=true 2>err; then exit 1; fi
grep -q "may be damaged" err

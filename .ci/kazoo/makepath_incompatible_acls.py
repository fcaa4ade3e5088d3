"""kazoo 2.11's test_create_makepath_incompatible_acls, against a running server.

kazoo sends CREATOR_ALL_ACL as `auth` with a null id; a makepath create below a node of
another user must fail with NoAuthError (Ensemble used to answer MarshallingError, which
kazoo could not decode). Run under every kazoo handler whose library is installed.

    python3 makepath_incompatible_acls.py 127.0.0.1:2181
"""
import importlib
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import CREATOR_ALL_ACL, make_digest_acl_credential

HANDLERS = [
    ("threading", "kazoo.handlers.threading", "SequentialThreadingHandler"),
    ("gevent", "kazoo.handlers.gevent", "SequentialGeventHandler"),
    ("eventlet", "kazoo.handlers.eventlet", "SequentialEventletHandler"),
]


def check(hosts, handler, name):
    credential = make_digest_acl_credential("username", "password")
    alt = KazooClient(hosts, auth_data=[("digest", credential)], handler=handler())
    client = KazooClient(hosts, handler=handler())
    alt.start()
    client.start()
    root = "/kazoo-%s" % name
    try:
        alt.create(root + "/1/2", b"val2", makepath=True, acl=CREATOR_ALL_ACL)
        try:
            client.create(root + "/1/2/3/4/5", b"val2", makepath=True)
        except NoAuthError:
            print("kazoo %s: NoAuthError, as with ZooKeeper" % name)
            return True
        print("kazoo %s: the create below another user's node succeeded" % name)
        return False
    finally:
        alt.delete(root, recursive=True)
        alt.stop()
        client.stop()


def main():
    hosts = sys.argv[1]
    ok = True
    for name, module, cls in HANDLERS:
        try:
            handler = getattr(importlib.import_module(module), cls)
        except ImportError:
            print("kazoo %s: handler not installed, skipped" % name)
            continue
        ok = check(hosts, handler, name) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""kazoo with SASL DIGEST-MD5 (pure-sasl) against a server whose JAAS Server section has
user_bob="bobsecret": bob creates a node only he may read, an anonymous client is refused it,
a wrong password is refused, and the anonymous client keeps working throughout.

usage: kazoo_sasl.py HOST:PORT
"""
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.protocol.states import KeeperState
from kazoo.security import ACL, Id, Permissions

hosts = sys.argv[1]
path = "/sasl-check"


def client(**kwargs):
    c = KazooClient(hosts=hosts, timeout=10, connection_retry={"max_tries": 0}, **kwargs)
    c.start(timeout=15)
    return c


anonymous = client()
bob = client(sasl_options={"mechanism": "DIGEST-MD5", "username": "bob", "password": "bobsecret"})
acl = [ACL(Permissions.ALL, Id("sasl", "bob"))]
if bob.exists(path):
    bob.delete(path)
bob.create(path, b"for bob only", acl=acl)
data, _ = bob.get(path)
assert data == b"for bob only", data
got_acl, _ = bob.get_acls(path)
assert [(a.id.scheme, a.id.id) for a in got_acl] == [("sasl", "bob")], got_acl
print("kazoo: bob authenticated with DIGEST-MD5 and created", path, "with sasl:bob")

try:
    anonymous.get(path)
    raise SystemExit("kazoo: an anonymous client read a sasl:bob node")
except NoAuthError:
    print("kazoo: anonymous client refused (NoAuth)")

# kazoo reports CONNECTED before its SASL exchange, so start() may return or time out (and
# then closes the client); the refusal shows as the AUTH_FAILED state (the server answers
# AuthFailed and closes the connection).
wrong = KazooClient(
    hosts=hosts,
    timeout=5,
    connection_retry={"max_tries": 0},
    sasl_options={"mechanism": "DIGEST-MD5", "username": "bob", "password": "wrong"},
)
seen = []  # kazoo moves on to CLOSED afterwards, so record the states it passes through
session_callback = wrong._session_callback


def spy(state):
    seen.append(state)
    return session_callback(state)


wrong._session_callback = spy
wrong.start_async()
for _ in range(100):
    if KeeperState.AUTH_FAILED in seen:
        break
    time.sleep(0.1)
assert KeeperState.AUTH_FAILED in seen, seen
print("kazoo: wrong password refused (AUTH_FAILED)")
try:
    wrong.stop()
    wrong.close()
except Exception:
    pass

assert anonymous.exists("/") is not None
anonymous.create(path + "-open", b"x")
anonymous.delete(path + "-open")
print("kazoo: the anonymous client kept working")
bob.delete(path)
bob.stop()
anonymous.stop()

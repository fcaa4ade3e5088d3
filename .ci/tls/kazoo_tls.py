"""kazoo over TLS with a client certificate (issue #12): the certificate's subject is the
connection's x509 id, so a node with an x509 ACL for it is readable over TLS and not from a
plain connection.

usage: kazoo_tls.py CERT_DIR TLS_HOSTS PLAIN_HOSTS
"""
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

certs, tls_hosts, plain_hosts = sys.argv[1:4]
DN = "CN=kazoo,O=Ensemble"

zk = KazooClient(
    hosts=tls_hosts,
    use_ssl=True,
    certfile=certs + "/kazoo.crt",
    keyfile=certs + "/kazoo.key",
    ca=certs + "/ca.pem",
    verify_certs=True,
)
zk.start(timeout=30)
zk.create("/kazoo-tls", b"over tls", acl=[make_acl("x509", DN, all=True)])
data, _ = zk.get("/kazoo-tls")
assert data == b"over tls", data
acl = zk.get_acls("/kazoo-tls")[0][0]
assert (acl.id.scheme, acl.id.id) == ("x509", DN), acl
print("kazoo over TLS: /kazoo-tls created and read back with ACL", acl)
zk.stop()

plain = KazooClient(hosts=plain_hosts)
plain.start(timeout=30)
try:
    plain.get("/kazoo-tls")
    raise SystemExit("a plain client read a node only x509:%s may read" % DN)
except NoAuthError:
    print("kazoo over plain TCP: NoAuth on the x509 node, as expected")
plain.stop()

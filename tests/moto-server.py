"""Run moto's S3 server with its SigV4 check fed the request as sent.

moto (seen with 5.2.1) checks a signature by rebuilding the request from
werkzeug's re-quoted URL instead of the request target the client sent and
signed.  Whenever the two differ -- '%2F' in a query (every listing with
delimiter=/ or prefix=dir/), or keys holding '+', '%', '&', '=' or any
non-ASCII byte -- a correctly signed request is refused with
SignatureDoesNotMatch; the aws CLI is refused the same way.  S3 signs what
was sent, so this wrapper hands moto's check the raw request target
(path and query exactly as they arrived) and changes nothing else: the
signature is still computed and compared by moto and botocore.

Usage: python3 moto-server.py [moto_server arguments]
"""
import sys

from moto.core import authorization
from moto.core.responses import BaseResponse
from moto.server import main

_setup_class = BaseResponse.setup_class
_authenticate = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action


def setup_class(self, request, full_url, headers, *args, **kwargs):
    """Remember the raw request target before moto parses it."""
    environ = getattr(request, "environ", None) or {}
    self._raw_target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    return _setup_class(self, request, full_url, headers, *args, **kwargs)


def authenticate(self, iam_request_cls, resource="*"):
    """Check the signature over the target exactly as the client sent it."""
    raw = getattr(self, "_raw_target", None)
    if not raw:
        return _authenticate(self, iam_request_cls, resource)
    saved = self.uri
    self.uri = "http://moto" + raw
    try:
        return _authenticate(self, iam_request_cls, resource)
    finally:
        self.uri = saved


BaseResponse.setup_class = setup_class
authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate

if __name__ == "__main__":
    sys.exit(main())

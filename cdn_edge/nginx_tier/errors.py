"""Errors of the nginx tier: its configuration and its process.

    NginxTierError                     (500)
    ├── TierConfigInvalid              (500)  a config value nginx cannot use (names the field)
    ├── NginxNotInstalled              (500)  the nginx binary or a gate module is missing
    ├── NginxConfigRejected            (500)  `nginx -t` refused the generated config
    ├── NginxStartTimeout              (503)  nginx did not answer on its port in time
    └── NginxExited                    (503)  nginx exited while starting

Messages name the file, binary or port involved and never contain a secret.
"""

from __future__ import annotations

from streamer.errors import StreamerError


class NginxTierError(StreamerError):
    """Base class of the nginx tier's errors."""


class TierConfigInvalid(NginxTierError, ValueError):
    """A field of NginxTierConfig is out of range or malformed."""


class NginxNotInstalled(NginxTierError):
    """The nginx binary, the NDK or Lua module, or lua-cjson is not where the config says."""


class NginxConfigRejected(NginxTierError):
    """`nginx -t` refused the generated configuration; carries nginx's own words."""


class NginxStartTimeout(NginxTierError):
    http_status = 503


class NginxExited(NginxTierError):
    http_status = 503

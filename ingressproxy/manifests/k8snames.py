"""Pure validators mirroring k8s.io/apimachinery's validation (names, hosts, paths, ports), used
by decode: each takes a value and returns the API server's error messages, empty when valid.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = [
    "config_key_errors",
    "dns1035_label_errors",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "domain_prefixed_path_errors",
    "host_errors",
    "is_ip",
    "path_segment_errors",
    "port_name_errors",
    "port_number_errors",
    "wildcard_subdomain_errors",
]

# k8s.io/apimachinery/pkg/util/validation/validation.go

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_WILDCARD_SUBDOMAIN_RE = re.compile(rf"^\*\.{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PORT_NAME_CHARSET_RE = re.compile(r"^[-a-z0-9]+$")
_PORT_NAME_LETTER_RE = re.compile(r"[a-z]")
_DOMAIN_PATH_RE = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


def dns1123_label_errors(value: str) -> list[str]:
    """IsDNS1123Label: namespaces, Service/Endpoints port names."""
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1123_LABEL_RE.match(value):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character"
        )
    return errors


def dns1123_subdomain_errors(value: str) -> list[str]:
    """IsDNS1123Subdomain: most object names, hosts, ingressClassName."""
    errors: list[str] = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character"
        )
    return errors


def dns1035_label_errors(value: str) -> list[str]:
    """IsDNS1035Label: Service names (they become DNS labels inside the cluster)."""
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1035_LABEL_RE.match(value):
        errors.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character"
        )
    return errors


def wildcard_subdomain_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _WILDCARD_SUBDOMAIN_RE.match(value):
        errors.append(
            "a wildcard RFC 1123 subdomain must start with '*.', followed by a valid RFC 1123 "
            "subdomain (the wildcard may only be the whole first label)"
        )
    return errors


def port_name_errors(value: str) -> list[str]:
    """IsValidPortName: an IANA service name (RFC 6335)."""
    errors: list[str] = []
    if len(value) > 15:
        errors.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARSET_RE.match(value):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.search(value):
        errors.append("must contain at least one letter (a-z)")
    if "--" in value:
        errors.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def port_number_errors(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


def path_segment_errors(value: str) -> list[str]:
    """IsValidPathSegmentName: resource backend kind/name."""
    if value in (".", ".."):
        return [f"may not be {value!r}"]
    return [f"may not contain {c!r}" for c in ("/", "%") if c in value]


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def host_errors(host: str) -> list[str]:
    """validateIngressRules' host checks: a DNS name (optionally `*.`-prefixed), not an IP, no
    port. Kubernetes rejects upper case (RFC 1123 names are lower case); we say so plainly."""
    if is_ip(host):
        return ["must be a DNS name, not an IP address"]
    if ":" in host:
        return ["must not contain a port (':'); the port belongs to the backend"]
    errors: list[str] = []
    if host != host.lower():
        errors.append("must be lower case")
        host = host.lower()
    if "*" in host:
        errors.extend(wildcard_subdomain_errors(host))
    else:
        errors.extend(dns1123_subdomain_errors(host))
    return errors


def domain_prefixed_path_errors(value: str) -> list[str]:
    """IsDomainPrefixedPath: IngressClass spec.controller, e.g. `k8s.io/ingress-nginx`."""
    host, sep, path = value.partition("/")
    if not sep or not host or not path:
        return ['must be a domain-prefixed path (such as "acme.io/foo")']
    errors = dns1123_subdomain_errors(host)
    if not _DOMAIN_PATH_RE.match(path):
        errors.append("the path part contains characters that are not allowed")
    return errors


def config_key_errors(key: str) -> list[str]:
    """IsConfigMapKey: the keys of Secret data."""
    errors: list[str] = []
    if len(key) > 253:
        errors.append("must be no more than 253 characters")
    if not _CONFIG_KEY_RE.match(key):
        errors.append("a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
    if key in (".", "..") or key.startswith(".."):
        errors.append("must not be '.' or '..' or start with '..'")
    return errors

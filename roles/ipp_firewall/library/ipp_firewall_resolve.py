#!/usr/bin/python
"""Ansible module: the addresses the engine hosts have, as the controller host resolves them.

The firewall lets each engine host in by the addresses its inventory name and its
ansible_host (often a management address) resolve to on the controller host: what an admin
would write by hand. It replaces a shell loop over `getent ahosts` that lived in the YAML.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ipp_firewall_resolve
short_description: Resolve the engine hosts' names the way the controller host does
description:
  - For each host, resolves its inventory name and its address (C(ansible_host)) with the
    system's resolver (getaddrinfo, as C(getent ahosts) does: /etc/hosts, DNS). Changes nothing.
options:
  hosts:
    description: Inventory name of each host to its C(ansible_host) (the name again when unset).
    type: dict
    required: true
"""

RETURN = r"""
addresses:
  description: Every address any of the hosts resolved to, once each, sorted.
  type: list
  returned: always
unresolved:
  description: The inventory names of the hosts for which neither name resolved.
  type: list
  returned: always
"""

import socket  # noqa: E402 (Ansible reads DOCUMENTATION first)
from collections.abc import Callable, Mapping  # noqa: E402


def system_lookup(name: str) -> list[str]:
    """The addresses the system's resolver gives for a name (none when it cannot resolve it)."""
    if not name:
        return []
    try:
        found = socket.getaddrinfo(name, None)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(sockaddr[0]) for _family, _type, _proto, _name, sockaddr in found})


def resolve(hosts: Mapping[str, str], lookup: Callable[[str], list[str]]) -> tuple[list[str], list[str]]:
    """(every address of the hosts, sorted; the hosts whose name and address both failed)."""
    addresses: set[str] = set()
    unresolved: list[str] = []
    for name, address in hosts.items():
        found = set(lookup(name)) | set(lookup(address or name))
        if not found:
            unresolved.append(name)
        addresses |= found
    return sorted(addresses), unresolved


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec={"hosts": {"type": "dict", "required": True}}, supports_check_mode=True)
    hosts = {str(name): str(address or "") for name, address in module.params["hosts"].items()}
    addresses, unresolved = resolve(hosts, system_lookup)
    module.exit_json(changed=False, addresses=addresses, unresolved=unresolved)


if __name__ == "__main__":
    main()

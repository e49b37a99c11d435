"""Networked docker jobs, kept to what they asked for: the node's job networks, the host firewall
guards that keep containers off the node's own services, and the egress proxy that lets an HTTP job
reach its `Network.Domains` and nothing else. README.md in this folder draws the flow."""

"""TLS for the node's API server: the certificate it serves (files, or one it makes and keeps)."""

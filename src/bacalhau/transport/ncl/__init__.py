"""NCL v1, Bacalhau's node-to-node protocol over NATS, as pure code: frames, subjects, payloads, acks.

No I/O here: the NATS transport publishes what `encode_message` returns and hands what it receives to
`decode_message` / `decode_response` / `parse_reply`. Modules, one concept each:

    envelope.py   the frame: 0x01 + CRC-32 + {"metadata", "payload"}; size limit
    metadata.py   metadata keys (Bacalhau-Type, -SeqNum...) and lenient readers
    registry.py   THE type-name <-> payload-class table; typed encode/decode
    control.py    handshake, heartbeat, node-info, shutdown payloads (out.ctrl)
    data.py       AskForBid ... RunResult, ComputeError, pre-signed URL payloads (in/out.msgs, out.requests)
    bac_error.py  the BacError reply, HandshakeRequired
    event.py      Event, carried by every data-plane payload
    wire_types.py Go-exact field types (uint64, RFC3339 time, omitempty Resources/NodeInfo)
    subjects.py   every subject; node-ID validation
    ack.py        data-plane ack/nack bodies and reply parsing
    errors.py     NclError and one subclass per failure

The reference is Bacalhau v1.9's Go source (pkg/lib/envelope, pkg/lib/ncl, pkg/models/messages,
pkg/transport/nclprotocol); interop is pinned by golden vectors in
tests/transport/test_ncl_*.py.
"""

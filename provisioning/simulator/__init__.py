"""Device simulator: a fleet of set-top boxes that speak the two on-box provisioning plugins over real sockets.

The portal is a *client* of these APIs (``provisioning/thunder.py``); tests, the demo and the benchmarks point it
at this simulator instead of real boxes. Every box listens on its own TCP port; all boxes share one asyncio event
loop, one aiohttp application and one ``AppRunner`` (one ``SockSite`` per box). A request finds its box from the
local port of its connection; ``Fleet(count, sockets=[…])`` serves box i on the i-th of sockets someone else
bound (``manage.py simulate_devices --fd``). 2 000 boxes fit in one process (the open-file soft limit is raised to
the hard one).

Use: ``Fleet(count, host=, base_port=, api_version=, faults=Faults(…), …)`` with ``await fleet.start()`` /
``await fleet.stop()`` (or ``async with``); ``FleetThread(count, **fleet_kwargs)`` runs one on its own loop in a
background thread for synchronous code (``start()`` / ``stop()`` or ``with``, ``.boxes``, ``.run(factory)``);
``python -m provisioning.simulator`` (no Django settings needed) or ``manage.py simulate_devices`` runs one from the
command line, with the same options.

The package imports no Django: ``state.py`` is a box (identities, runs, faults, methods), ``rpc.py`` the JSON-RPC
envelope, ``server.py`` the fleet on the wire and ``FleetThread``, ``cli.py`` the command line. The wire facts the
portal's client shares with it (callsigns, error codes, states) are ``provisioning/thunder_protocol.py``.

Wire behaviour (as Thunder puts it on the wire)
-----------------------------------------------
- ``POST /jsonrpc`` with a JSON-RPC 2.0 request. Success: HTTP 200 ``{"jsonrpc":"2.0","id":…,"result":…}``.
  A JSON-RPC error: HTTP **202** ``{"jsonrpc":"2.0","id":…,"error":{"code":N,"message":"…"}}``. Bodies are compact
  JSON, ``Content-Type: application/json``. Other paths: 404; other methods on ``/jsonrpc``: 405.
- ``GET /jsonrpc`` upgraded to a WebSocket (subprotocol ``notification`` is accepted, so is no subprotocol). Each
  text frame is one request; its answer is one text frame, byte-identical to the HTTP body. Requests on one socket
  are served concurrently, so with latency their answers may come back out of order (match them by ``id``).
  Binary frames are ignored.
- Envelope errors: unparseable JSON → -32700 ``Parse error`` (``id`` null); not an object (batches included),
  ``jsonrpc`` not ``"2.0"``, ``method`` missing or not a string, ``id`` not a string/number/null → -32600
  ``Invalid Request``; unknown callsign, version or method → -32601 ``Unknown method.``. A request without ``id``
  is still answered, with ``"id": null``.
- Designators ``callsign[.N].method``, as ThunderJS builds them (it always sends a version, 1 unless configured):
  ``com.comcast.DeviceProvisioning.N.<method>`` for N from 1 to the box's API version, ``Provisioning.1.<method>``,
  or either without a version. Every version N reaches every method of the box (a method above the box's API
  version stays -32601, whatever N says); register / unregister take a version too. Any other N (0, above the
  box's API version, ``Provisioning.2``) → -32602 ``Requested version is not supported.``, which is what Thunder R2
  answers for a version no handler of the plugin supports (``PluginHost::JSONRPC::Destination`` →
  ``STATE_INCORRECT_VERSION`` → ``ERROR_INVALID_SIGNATURE``; R4 says the same text with code 45). Leading zeros
  count for nothing (``.01.`` is version 1).
- Thunder error codes used: 2 ``ERROR_UNAVAILABLE`` (fault knob), 5 ``ERROR_ILLEGAL_STATE`` (``register`` /
  ``unregister`` over plain HTTP: there is no channel to push events on), 12 ``ERROR_INPROGRESS`` (a run already
  going, or the busy knob), 22 ``ERROR_UNKNOWN_KEY`` (``register`` for an event other than
  ``provisioningchange``). Bad parameters (``index`` with a non-string label or an index outside 0…2³²-1, params
  that are not an object where an object is expected, ``register`` without ``event``/``id`` strings, a property
  read carrying non-empty params, i.e. a write to a read-only property) → -32602 ``Invalid params``.

Events
------
``<callsign>.register`` / ``.unregister`` with ``{"event": "provisioningchange", "id": "client.events.1"}`` return
``0`` on either callsign, subscribe / unsubscribe that WebSocket, and are idempotent (registering the same id twice,
even through the other callsign, still yields one notification per change; unregistering an unknown id returns 0).
Notifications: ``{"jsonrpc":"2.0","method":"<id>.provisioningchange","params":{"status":N}}`` where N is 200 when a
run ends well and 500 when it ends CORRUPTED. Both plugins' runs notify: a provision-type run
(``reprovision``) and the platform run (``Provisioning.1.provision``). Starting a run (→ IN_PROGRESS) does not
notify. With ``provision_seconds == 0`` a run completes inside the call; its notification may then reach the
socket before the call's answer.

com.comcast.DeviceProvisioning
------------------------------
``getApiVersionNumber`` → ``{"version": "<n>", "success": true}``; ``getNetflixESN`` (API ≥ 2) →
``{"esn": …, "success": true}``, the ESN empty unless the box's first provision type (HARDWARE) is PROVISIONED;
``getSOCId`` (≥ 3) → ``{"socid": …, "success": true}``; ``notifyProvisioning`` (≥ 2) → ``{"success": true}``
(recorded in ``Box.notified_types``, no other effect); ``provisionCheck`` and ``reprovision`` →
``{"provisionTypes": […], "success": true}``. A method above the box's API version → -32601. A missing, unknown
or unsupported ``provisionType`` → result ``{"success": false, "error": "<why>"}``. ``reprovision`` of a type
already IN_PROGRESS → error 12. Per type: NOT_PROVISIONED → IN_PROGRESS → PROVISIONED | CORRUPTED after
``provision_seconds`` (CORRUPTED for ``corrupt_share`` of runs); the answer to ``reprovision`` already shows
IN_PROGRESS, or the final state when ``provision_seconds`` is 0 (which is how the seed's example answer, showing
PROVISIONED, is reproduced). Kinds and reasons: ``KINDS`` and ``REASONS`` in ``state.py``.

Provisioning (Thunder, version 1)
---------------------------------
``provision`` → ``null`` and starts the platform run; another ``provision`` while it runs → error 12. After
``provision_seconds`` status becomes 200 with tokens ``["netflix, playready"]`` (or 500 with no tokens for a
corrupt run) and subscribers get ``provisioningchange``. ``index`` {label: string, index: 0…2³²-1} → ``null``;
both are optional as in the seed (absent → ``""`` / ``0``); the values are kept in ``Box.indexes``.
Properties ``id`` → provision id, ``state`` → ``{"id", "status", "tokens"}``; status 0 means never provisioned.
The platform run and the provision-type runs are independent of each other.

Boxes and identities
--------------------
Box *i* has API version ``1 + i % 3`` unless the fleet fixes one, supports every configured type except every
``single_type_every``-th box (box 0 included) which supports only the first (HARDWARE), and starts PROVISIONED
(platform status 200) except every fifth box (``i % 5 == 4``) which starts NOT_PROVISIONED (status 0, no tokens,
empty ESN), unless ``initial_state`` says otherwise. ``Box.calls`` counts the well-formed requests a box received,
by bare method name (``calls["reprovision"]``), on arrival, before latency and faults. Box 0 reproduces the seeds'
examples byte for byte: provision id ``WPE00000uCfrLF45``, ESN ``CMCSTX100000000000000000000000000001000000``, SOC
id ``001b08011000082a``, platform status 200 with tokens ``["netflix, playready"]``, HARDWARE ``RT.2`` PROVISIONED;
box *i* derives distinct values from *i* (``provision_id_for``, ``esn_for``, ``soc_id_for``; serial number
``SIM%06d``). A fleet starts once.

Faults (``Faults``, per box: ``fleet.boxes[3].faults.unavailable_share = 1.0``)
------------------------------------------------------------------------------
``latency`` seconds before every answer; of the well-formed calls, ``drop_share`` get their connection aborted
without an answer (over a WebSocket the whole socket goes), ``busy_share`` get error 12, ``unavailable_share`` error
2 (drawn in that order, after the latency); ``dead_share`` of boxes accept TCP connections and read requests
(WebSocket handshakes included) but never answer; ``corrupt_share`` of runs end CORRUPTED (status 500);
``provision_seconds`` is the length of a run; ``seed`` makes every draw reproducible (each box draws from its own
generator, seeded with the seed and its index). Whether a box is dead is drawn once per box (a fixed number compared
with its ``dead_share``), so changing ``dead_share`` on a box, or setting ``box.dead``, takes effect at once: new
requests hang, frames on open WebSockets are ignored and no events go out. A silent caller is released (its
connection aborted) when the fleet stops.

Portal link (optional)
----------------------
With ``portal_url``, each box activates itself at start (``POST {portal_url}/provision/activate`` with vendor,
model, sn; a 40-hex CIK back) and pushes every notification to ``POST {portal_url}/jsonrpc`` with header
``X-Exosite-CIK`` and method ``client.events.1.provisioningchange``. Failures are logged, never raised.
"""

from provisioning.simulator.rpc import RpcError
from provisioning.simulator.server import Fleet, FleetThread, raise_open_file_limit
from provisioning.simulator.state import (
    CRYPTANIUM,
    HARDWARE,
    KINDS,
    PROVISION_TYPES,
    REASONS,
    TOKENS,
    Box,
    Faults,
    TypeState,
    esn_for,
    provision_id_for,
    soc_id_for,
)
from provisioning.thunder_protocol import ProvisionState

__all__ = [
    "CRYPTANIUM",
    "HARDWARE",
    "KINDS",
    "PROVISION_TYPES",
    "REASONS",
    "TOKENS",
    "Box",
    "Faults",
    "Fleet",
    "FleetThread",
    "ProvisionState",
    "RpcError",
    "TypeState",
    "esn_for",
    "provision_id_for",
    "raise_open_file_limit",
    "soc_id_for",
]

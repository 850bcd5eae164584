"""Thunder wire facts of the two on-box provisioning plugins: what the portal's client (``provisioning/thunder.py``)
and the device simulator (``provisioning/simulator``) both rely on. No Django here (the simulator runs without it);
``provisioning/choices.py`` derives its stored choices from these names.

Sources: the plugins' interface specs (com.comcast.DeviceProvisioning, Provisioning) and Thunder R2's error codes
(``Core::ERROR_*``; JSON-RPC 2.0's own codes for the envelope).
"""

from __future__ import annotations

from enum import StrEnum

# Callsigns, and the one version of the Provisioning plugin.
DEVICE_PROVISIONING = "com.comcast.DeviceProvisioning"
PROVISIONING = "Provisioning"
CALLSIGNS = (DEVICE_PROVISIONING, PROVISIONING)
PLUGIN_VERSION = "1"
API_VERSIONS = (1, 2, 3)  # of com.comcast.DeviceProvisioning (getApiVersionNumber)

# The API version of com.comcast.DeviceProvisioning that introduced each method: a box serves every version up to its
# own, so this is also the lowest version designator that reaches every box having the method.
METHOD_SINCE = {
    "getApiVersionNumber": 1,
    "getNetflixESN": 2,
    "getSOCId": 3,
    "notifyProvisioning": 2,
    "provisionCheck": 1,
    "reprovision": 1,
}

# Events: the one event both plugins send, and the client id the portal registers (and boxes push) it under.
EVENT = "provisioningchange"
PORTAL_EVENT_ID = "client.events.1"

# Platform status of Provisioning.1.state (and of provisioningchange): never provisioned, good, corrupt.
STATUS_NEVER, STATUS_OK, STATUS_CORRUPTED = 0, 200, 500
MAX_INDEX = 2**32 - 1  # Provisioning.1.index: an unsigned 32-bit number

# JSON-RPC 2.0 envelope errors, and the Thunder error codes these plugins answer with.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602  # also "Requested version is not supported." (Thunder R2's ERROR_INVALID_SIGNATURE)
ERROR_UNAVAILABLE = 2
ERROR_ILLEGAL_STATE = 5
ERROR_INPROGRESS = 12
ERROR_UNKNOWN_KEY = 22


class ProvisionType(StrEnum):
    HARDWARE = "HARDWARE"
    CRYPTANIUM = "CRYPTANIUM"


class ProvisionState(StrEnum):
    """The state of one provision type, as provisionCheck and reprovision report it (and the portal stores it)."""

    NOT_PROVISIONED = "NOT_PROVISIONED"
    IN_PROGRESS = "IN_PROGRESS"
    PROVISIONED = "PROVISIONED"
    CORRUPTED = "CORRUPTED"

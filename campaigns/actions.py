"""What a campaign does to each member, validated by the apps' own rules.

- Commands: any ``provisioning.choices.CommandKind`` with its parameters, cleaned by provisioning's own cleaning
  (``provisioning.services._clean_params``, the one ``commands_create`` applies; there is no public name for it).
- Conax: the request types a campaign can make for one card (or one CAS box) from fixed parameters; each member's
  draft comes from ``conax.services``' own draft builders, so every rule of the CRM.COM API applies (message
  lengths, intervals, service in the subscription, card in the subscription). At creation the parameters are
  checked once against a probe card. Not offered: the pairing requests (they name several cards and boxes each) and
  ``UPDATE_CA_PIN_TO_GIVEN_VALUE`` (a campaign would have to keep a PIN, which is never kept in clear).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from campaigns.choices import ActionKind
from campaigns.exceptions import InvalidCampaign
from conax import services as conax
from conax.choices import RequestType
from conax.exceptions import ConaxError, InvalidParameter, RuleViolation
from conax.models import Service, Smartcard
from conax.models import SetTopBox as CasBox
from provisioning.choices import CommandKind
from provisioning.exceptions import InvalidCommand
from provisioning.services import _clean_params

R = RequestType
BOX_REQUESTS = {R.GET_PAIRING_STATUS_FOR_PAIRING_MODULE}
CARD_REQUESTS = {
    R.ADD_SUBSCRIPTIONS,
    R.CANCEL_SUBSCRIPTIONS,
    R.GET_ACTIVE_SUBSCRIPTIONS,
    R.GET_PAIRING_STATUS_FOR_CARD,
    R.DISPLAY_FINGERPRINT,
    R.UPDATE_CA_PIN_TO_DEFAULT_VALUE,
    R.SEND_MAIL_MESSAGE_TO_CLIENT,
    R.SEND_BARK_MESSAGE_TO_CLIENT,
    R.SEND_REPEATING_BARK_MESSAGE_TO_CLIENT,
}
PARAMS = {  # the parameters each Conax type takes (anything else is refused)
    R.ADD_SUBSCRIPTIONS: {"service"},
    R.CANCEL_SUBSCRIPTIONS: {"service"},
    R.DISPLAY_FINGERPRINT: set(conax.FINGERPRINT_FIELDS) - {"smartcard_ca_id"},
    R.SEND_MAIL_MESSAGE_TO_CLIENT: {"message"},
    R.SEND_BARK_MESSAGE_TO_CLIENT: {"message", "duration"},
    R.SEND_REPEATING_BARK_MESSAGE_TO_CLIENT: {"message", "interval", "repetitions"},
}


def clean(*, action_kind: str, action: str, params: dict) -> dict:
    """The parameters as the action will use them; ``InvalidCampaign`` naming what is wrong."""
    if not isinstance(params, dict):
        raise InvalidCampaign("params must be an object")
    if action_kind == ActionKind.COMMAND:
        if action not in CommandKind.values:
            raise InvalidCampaign(f"unknown command {action!r}", field="action")
        try:
            return _clean_params(action, params)
        except InvalidCommand as exc:
            raise InvalidCampaign(exc.message, field="params") from exc
    if action_kind != ActionKind.CONAX:
        raise InvalidCampaign(f"unknown action kind {action_kind!r}", field="action_kind")
    if action not in CARD_REQUESTS | BOX_REQUESTS:
        raise InvalidCampaign(f"a campaign cannot make {action!r} requests", field="action")
    unknown = set(params) - PARAMS.get(R(action), set())
    if unknown:
        raise InvalidCampaign(f"unknown parameter {sorted(unknown)[0]!r} for {action}", field="params")
    _probe(R(action), params)
    return dict(params)


def _probe(action: RequestType, params: dict) -> None:
    """Run the type's draft builder once on a card that is not stored: its parameter rules raise here."""
    if "service" in PARAMS.get(action, ()):
        if not isinstance(params.get("service"), str) or not Service.objects.filter(code=params["service"]).exists():
            raise InvalidCampaign("service must be the code of an existing service", field="params")
        return
    probe_card, probe_box = Smartcard(ca_id="0" * 8, serial_number="probe"), CasBox(ca_id="0" * 8)
    try:
        draft(action=action, params=params, card=probe_card, cas_box=probe_box)
    except ConaxError as exc:
        raise InvalidCampaign(exc.message, field="params", description=exc.description) from exc
    except (TypeError, ValueError) as exc:
        raise InvalidCampaign(f"invalid parameters for {action}: {exc}", field="params") from exc


def _service(params: dict) -> Service:
    return Service.objects.get(code=params["service"])


def _subscription_change(action: RequestType) -> Callable[[dict, Smartcard], conax.Draft]:
    def build(params: dict, card: Smartcard) -> conax.Draft:
        if card.subscription is None:
            raise RuleViolation("the smartcard has no subscription")
        return conax.subscription_change(
            type=action, subscription=card.subscription, service=_service(params), smartcard=card
        )

    return build


def _pin_default(params: dict, card: Smartcard) -> conax.Draft:
    if card.subscription is None:
        raise RuleViolation("the smartcard has no subscription")
    return conax.pin_reset(subscription=card.subscription, smartcard=card, pin=None)


CARD_BUILDERS: dict[RequestType, Callable[[dict, Smartcard], conax.Draft]] = {
    R.ADD_SUBSCRIPTIONS: _subscription_change(R.ADD_SUBSCRIPTIONS),
    R.CANCEL_SUBSCRIPTIONS: _subscription_change(R.CANCEL_SUBSCRIPTIONS),
    R.GET_ACTIVE_SUBSCRIPTIONS: lambda p, card: conax.card_query(type=R.GET_ACTIVE_SUBSCRIPTIONS, smartcard=card),
    R.GET_PAIRING_STATUS_FOR_CARD: lambda p, card: conax.card_query(type=R.GET_PAIRING_STATUS_FOR_CARD, smartcard=card),
    R.DISPLAY_FINGERPRINT: lambda p, card: conax.fingerprint(smartcard=card, display=p),
    R.UPDATE_CA_PIN_TO_DEFAULT_VALUE: _pin_default,
    R.SEND_MAIL_MESSAGE_TO_CLIENT: lambda p, card: conax.mail(smartcard=card, message=_text(p)),
    R.SEND_BARK_MESSAGE_TO_CLIENT: lambda p, card: conax.bark(
        smartcard=card, message=_text(p), duration=p.get("duration")
    ),
    R.SEND_REPEATING_BARK_MESSAGE_TO_CLIENT: lambda p, card: conax.repeating_bark(
        smartcard=card, message=_text(p), interval=p.get("interval", 0), repetitions=p.get("repetitions")
    ),
}  # fmt: skip


def _text(params: dict) -> str:
    message = params.get("message")
    if not isinstance(message, str):
        raise InvalidParameter("message must be a string")
    return message


def draft(*, action: RequestType | str, params: dict, card: Smartcard | None, cas_box: CasBox | None) -> conax.Draft:
    """The request one member gets; ``ConaxError`` when conax's rules refuse it for this card or box."""
    action = R(action)
    if action in BOX_REQUESTS:
        if cas_box is None:
            raise RuleViolation("no such CAS set-top box (removed)")
        return conax.pairing_module_query(set_top_box=cas_box)
    if card is None:
        raise RuleViolation("no such smartcard (removed)")
    return CARD_BUILDERS[action](params, card)


def describe(action_kind: str, action: str, params: dict) -> dict[str, Any]:
    return {"kind": action_kind, "action": action, "params": params}

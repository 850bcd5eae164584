"""The admin filters the way the REST API does: a changelist takes its app's FilterSet parameters (the staff API's
names: ``?state=activated&model_id=3``) and validates them with that FilterSet; the admin's own sidebar filters
refuse a value they do not offer. An invalid value answers 400 with the list empty and each error in words at the
top, never a silently unfiltered list (Django's own answer is a redirect to ``?e=1`` that drops every filter).

Every changelist of the site is also ``date_safe``: a date the database cannot be asked about (a datetime whose
value in the connection's time zone leaves years 1-9999, a ``__year`` outside them, a hierarchy day past
9999-12-31) is a bad filter answered the admin's way (the list with ``?e=1``), never an error page. PostgreSQL takes
such a value as it is, SQLite's adapter converts it to the connection's zone first and overflows (a 500); the
refusal is the same on both."""

from __future__ import annotations

from datetime import MAXYEAR, MINYEAR, datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import IGNORED_PARAMS, SEARCH_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connection
from django.db.models import DateTimeField, Field, Model, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django_filters import FilterSet

REFUSED = "_admin_filter_refused"
APPLIED = "_admin_filterset"
# Lookups whose value is a datetime of the field (``__in`` and ``__range``: several, comma-separated).
DATETIME_LOOKUPS = {"", "exact", "gt", "gte", "lt", "lte", "in", "range"}
YEAR_TRANSFORMS = {"year", "iso_year"}


class DateSafeChangeList(ChangeList):
    """Refuses the date lookups the database cannot run (``IncorrectLookupParameters``: Django's "?e=1" answer)."""

    def get_filters(self, request: HttpRequest) -> Any:
        refuse_unrunnable_dates(self.model, self.get_filters_params())
        try:  # the date hierarchy computes the next day, month or year in plain Python (9999-12-31 overflows)
            filters = super().get_filters(request)
        except (OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc
        refuse_unrunnable_dates(self.model, filters[2])  # what is left, with the hierarchy's bounds
        return filters


_DATE_SAFE: dict[type[ChangeList], type[ChangeList]] = {}


def date_safe(base: type[ChangeList]) -> type[ChangeList]:
    """``base`` with ``DateSafeChangeList``'s checks (itself when it has them); one class per base."""
    if issubclass(base, DateSafeChangeList):
        return base
    if base not in _DATE_SAFE:
        _DATE_SAFE[base] = type(base.__name__, (DateSafeChangeList, base), {"__module__": base.__module__})
    return _DATE_SAFE[base]


class DateSafeAdminMixin(admin.ModelAdmin):
    """A ModelAdmin whose changelist is ``date_safe`` (``ConsoleAdmin`` has it; ``date_safe_site`` adds it to the
    admins of other packages)."""

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return date_safe(super().get_changelist(request, **kwargs))


def date_safe_site(site: admin.AdminSite) -> None:
    """Registers every admin of ``site`` that is not ``DateSafeAdminMixin`` again as its date-safe subclass (the
    admins of Django's auth, axes, django-celery-beat, auditlog): one refusal for every list of the site."""
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, DateSafeAdminMixin):
            continue
        cls = type(model_admin)
        site.unregister(model)
        site.register(model, type(cls.__name__, (DateSafeAdminMixin, cls), {"__module__": cls.__module__}))


def refuse_unrunnable_dates(model: type[Model], lookups: dict[str, Any]) -> None:
    for key, values in lookups.items():
        field, lookup = _local_field(model, key)
        if not isinstance(field, DateTimeField):
            continue
        for value in values if isinstance(values, list) else [values]:
            problem = _unrunnable(field, lookup, value)
            if problem:
                raise IncorrectLookupParameters(f"{key}: {problem}")


def _local_field(model: type[Model], key: str) -> tuple[Field | None, list[str]]:
    """The field a lookup key ends on (following relations) and the lookups and transforms after it."""
    parts = key.split(LOOKUP_SEP)
    opts = model._meta
    for index, part in enumerate(parts):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return None, []
        if field.related_model is None:
            return field, parts[index + 1 :]  # type: ignore[return-value]  # a concrete field, not a relation
        opts = field.related_model._meta  # type: ignore[union-attr]  # a model class, not 'self', once loaded
    return None, []


def _unrunnable(field: DateTimeField, lookup: list[str], value: Any) -> str | None:
    if lookup and lookup[0] in YEAR_TRANSFORMS:
        year = str(value).strip()
        in_range = year.lstrip("-").isdigit() and MINYEAR <= int(year) <= MAXYEAR
        return None if in_range else f"the year {value!r} is not between {MINYEAR} and {MAXYEAR}"
    if LOOKUP_SEP.join(lookup) not in DATETIME_LOOKUPS:
        return None
    for one in value.split(",") if isinstance(value, str) and lookup and lookup[0] in {"in", "range"} else [value]:
        try:
            moment = field.to_python(one)
        except ValidationError:
            return None  # not a date at all: Django refuses it the same way
        if isinstance(moment, datetime) and not _representable(moment):
            return f"{one!s} is outside the dates the database can hold in its time zone"
    return None


def _representable(moment: datetime) -> bool:
    """Whether the moment exists in the database connection's time zone (where SQLite's adapter converts it)."""
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        moment.astimezone(connection.timezone)
    except (OverflowError, ValueError):
        return False
    return True


class FilterSetAdminMixin(admin.ModelAdmin):
    """Put first among a ModelAdmin's bases and name ``filterset_class``."""

    filterset_class: type[FilterSet] | None = None
    # The changelist class the admin would use otherwise (one that adds its own checks).
    changelist_base: type[ChangeList] | None = None

    def get_filterset_class(self) -> type[FilterSet] | None:
        return self.filterset_class

    def filterset_params(self, request: HttpRequest) -> dict[str, str]:
        """The FilterSet's parameters in the query string, except those the admin itself reads."""
        filterset_class = self.get_filterset_class()
        if filterset_class is None:
            return {}
        own = {SEARCH_VAR, *IGNORED_PARAMS} | {name for name, _ in self._simple_filters()}
        return {
            name: request.GET[name] for name in filterset_class.base_filters if name in request.GET and name not in own
        }

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        errors = self._sidebar_errors(request)
        params = self.filterset_params(request)
        filterset_class = self.get_filterset_class()
        if params and filterset_class is not None:
            filterset = filterset_class(params, queryset=super().get_queryset(request), request=request)
            if filterset.is_valid():
                setattr(request, APPLIED, filterset)
            else:
                labels = {name: field.label or name for name, field in filterset.form.fields.items()}
                errors += [
                    f"{labels.get(name, name)} ({name}): {' '.join(map(str, problems))}"
                    for name, problems in filterset.errors.items()
                ]
        if not errors:
            return super().changelist_view(request, extra_context)
        setattr(request, REFUSED, True)
        for error in errors:
            messages.error(request, f"Filter not applied, nothing is listed. {error}")
        response = super().changelist_view(request, extra_context)
        response.status_code = 400
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[Model]:
        queryset = super().get_queryset(request)
        if getattr(request, REFUSED, False):
            return queryset.none()
        filterset = getattr(request, APPLIED, None)
        return filterset.filter_queryset(queryset) if filterset is not None else queryset

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        base = date_safe(self.changelist_base or super().get_changelist(request, **kwargs))
        names = set(self.filterset_params(request))
        refused = getattr(request, REFUSED, False)
        simple = {name for name, _ in self._simple_filters()}

        class FilterSetChangeList(base):  # type: ignore[valid-type,misc]  # a class chosen at run time
            filter_refused = refused  # the page lists nothing, whatever happens (a live list does not follow it)

            # The FilterSet's parameters stay in the links (pagination, sorting) but are not read as field lookups;
            # a refused sidebar value is not read at all.
            def get_filters_params(self, params: dict | None = None) -> dict:
                lookup = super().get_filters_params(params)
                for name in names | (simple if refused else set()):
                    lookup.pop(name, None)
                return lookup

        return FilterSetChangeList

    def _simple_filters(self) -> list[tuple[str, type[admin.SimpleListFilter]]]:
        return [
            (spec.parameter_name or "", spec)
            for spec in self.list_filter
            if isinstance(spec, type) and issubclass(spec, admin.SimpleListFilter)
        ]

    def _sidebar_errors(self, request: HttpRequest) -> list[str]:
        errors = []
        for name, spec in self._simple_filters():
            value = request.GET.get(name)
            if value is None or getattr(spec, "free_text", False):
                continue
            offered = {str(key): str(label) for key, label in spec(request, {}, self.model, self).lookup_choices}
            if value not in offered:
                choices = "; ".join(offered.values())
                errors.append(
                    f"{str(spec.title or name).capitalize()}: {value!r} is not one of the choices ({choices})."
                )
        return errors

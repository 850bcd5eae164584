"""The admin filters the way the REST API does: a changelist takes its app's FilterSet parameters (the staff API's
names: ``?state=activated&model_id=3``) and validates them with that FilterSet; the admin's own sidebar filters
refuse a value they do not offer. An invalid value answers 400 with the list empty and each error in words at the
top, never a silently unfiltered list (Django's own answer is a redirect to ``?e=1`` that drops every filter)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import IGNORED_PARAMS, SEARCH_VAR, ChangeList
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django_filters import FilterSet

REFUSED = "_admin_filter_refused"
APPLIED = "_admin_filterset"


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
        base = self.changelist_base or super().get_changelist(request, **kwargs)
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

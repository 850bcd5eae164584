"""The staff REST API's base views: thin by construction (STYLE 4 and 5).

A view names its output serializer, its selector (the queryset, before the FilterSet the filter backend applies:
an invalid filter value is a 400 there, ``SafeFilterBackend``), its FilterSet, and for writes an input serializer
and the one service call that writes. The schema (request, response, status) follows from the same names, so
what the API documents cannot drift from what it does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from portal.kernel.api.rest import valid

# The classes here carry comments, not docstrings: drf-spectacular would print a base class's docstring as the
# description of every operation that inherits it.


class SelectorQuerysetMixin:
    # get_queryset from the view's selector; the output serializer is the view's serializer_class.

    output_serializer_class: ClassVar[type[serializers.Serializer]]
    # A selector taking no argument (its FilterSet runs in the filter backend); a plain function, read off the class.
    selector: ClassVar[Callable[[], QuerySet]]

    def get_queryset(self) -> QuerySet:
        return type(self).selector()

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return self.output_serializer_class

    def fresh(self, instance: Model) -> Model:
        """What the output serializer is given after a write (override to re-read annotations the service lacks)."""
        return instance

    def output(self, instance: Model) -> dict:
        return self.get_serializer_class()(self.fresh(instance)).data


class StaffViewSet(SelectorQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    # List and retrieve; CreateMixin, UpdateMixin (PUT and PATCH) or PatchMixin (PATCH alone) add the writes.

    create_input_class: ClassVar[type[serializers.Serializer] | None] = None
    update_input_class: ClassVar[type[serializers.Serializer] | None] = None
    create_responses: ClassVar[dict[int, Any]] = {}  # error answers beyond those every operation documents
    update_responses: ClassVar[dict[int, Any]] = {}
    delete_responses: ClassVar[dict[int, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not hasattr(cls, "output_serializer_class"):
            return
        schemas = {}
        if hasattr(cls, "create") and cls.create_input_class is not None:
            created = {201: cls.output_serializer_class, **cls.create_responses}
            schemas["create"] = extend_schema(request=cls.create_input_class, responses=created)
        for method in ("update", "partial_update"):
            if hasattr(cls, method) and cls.update_input_class is not None:
                updated = {200: cls.output_serializer_class, **cls.update_responses}
                schemas[method] = extend_schema(request=cls.update_input_class, responses=updated)
        if hasattr(cls, "destroy") and hasattr(cls, "delete_object"):
            schemas["destroy"] = extend_schema(responses={204: None, **cls.delete_responses})
        extend_schema_view(**schemas)(cls)


# The write mixins are combined with StaffViewSet, whose attributes they read: the type checker reads them as its
# subclasses, Python as plain classes.
if TYPE_CHECKING:
    _StaffView = StaffViewSet
else:
    _StaffView = object


class CreateMixin(_StaffView):
    # POST: validate the input serializer, call create_object (one service call), answer 201 with the output.

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if self.create_input_class is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no create_input_class")
        data = valid(self.create_input_class, request.data)
        return Response(self.output(self.create_object(data)), status=status.HTTP_201_CREATED)

    def create_object(self, data: dict) -> Model:
        raise NotImplementedError


class PatchMixin(_StaffView):
    # PATCH: the whole input serializer is validated (no partial input), then update_object (one service call).

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        if self.update_input_class is None:
            raise ImproperlyConfigured(f"{type(self).__name__} has no update_input_class")
        data = valid(self.update_input_class, request.data)
        return Response(self.output(self.update_object(instance, data)))

    def update_object(self, instance: Model, data: dict) -> Model:
        raise NotImplementedError


class UpdateMixin(PatchMixin):
    # PUT and PATCH, with the same input.

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return PatchMixin.partial_update(self, request, *args, **kwargs)


class DeleteMixin(_StaffView):
    # DELETE: delete_object (one service call, which may refuse with a domain error), 204.

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.delete_object(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def delete_object(self, instance: Model) -> None:
        raise NotImplementedError

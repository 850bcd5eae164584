"""The operator console's admin conventions, one mixin for every ModelAdmin of the portal (``ConsoleAdmin``).

- **Writes go through services.** The admin's own save path (``ModelForm.save()`` and ``obj.save()``) is replaced:
  ``save_model`` calls the admin's ``service_save`` and ``delete_model`` / ``delete_queryset`` its ``service_delete``,
  so an app's rules and its audit trail hold whatever screen was used. An admin that names no ``service_save`` has no
  editable field (``tests/portal/test_console.py`` checks every registered admin); one without ``service_delete``
  cannot delete. A service's refusal (a ``DomainError``) is shown as a message, nothing half-written (the admin's
  transaction is rolled back), never an error page.
- **Act where you look.** ``object_actions`` are buttons on the object's own page. Each posts to
  ``<pk>/act/<name>/``; an action with ``confirm`` text or a ``form`` first shows a page that says what will happen
  (and asks for the parameters), then runs on its confirmation. Refusals are messages on the object's page.
- **Bulk actions report per object**, and large selections run in the background (``bulk``, ``portal.kernel.jobs``).
- **Read-only records show no Save buttons**: an object page without an editable field has none, and refuses a post.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.forms.formsets import BaseFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from portal.kernel import jobs
from portal.kernel.adminfilters import DateSafeAdminMixin
from portal.kernel.errors import Category, DomainError


class NotDone(DomainError):
    """A button's operation left its object alone (the object is not in a state that allows it)."""

    code = "NOT_DONE"
    category = Category.CONFLICT


class ConsoleInline(admin.TabularInline):
    """A related list on an object's page, read-only: related records change through their own pages and services
    (``ConsoleAdmin.save_related`` saves no inline)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@dataclass(frozen=True)
class ObjectAction:
    """A button on an object's page. ``run`` names a method of the admin: ``run(request, obj, data) -> str`` (the
    success message; raise a ``DomainError`` to refuse). ``shown`` names a method ``(obj) -> bool``."""

    name: str
    label: str
    run: str
    confirm: str = ""  # what happens, said before it happens (destructive actions)
    form: type[forms.Form] | None = None  # parameters asked for on the confirmation page
    shown: str = ""
    danger: bool = False

    @property
    def asks(self) -> bool:
        return bool(self.confirm or self.form)


class ConsoleAdmin(DateSafeAdminMixin, admin.ModelAdmin):
    """Mixed in before ``admin.ModelAdmin`` (``class DeviceAdmin(ConsoleAdmin, admin.ModelAdmin)``)."""

    object_actions: Sequence[ObjectAction] = ()

    @property
    def change_form_template(self) -> list[str]:  # type: ignore[override]
        """Django's own lookup (the model's, the app's template) ending in the console's, which adds the buttons."""
        app, model = self.opts.app_label, self.opts.model_name
        return [
            f"admin/{app}/{model}/change_form.html",
            f"admin/{app}/change_form.html",
            "admin/portal/change_form.html",
        ]

    # --- writes through services ----------------------------------------------------------------------------------

    def service_save(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> models.Model:
        """Create or change ``obj`` through the app's service (``form.cleaned_data`` holds what the user gave);
        return the saved instance."""
        raise PermissionDenied("this record is changed only by the portal's own workflows")

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        raise PermissionDenied("this record cannot be deleted here")

    @classmethod
    def saves_through_service(cls) -> bool:
        return cls.service_save is not ConsoleAdmin.service_save

    @classmethod
    def deletes_through_service(cls) -> bool:
        return cls.service_delete is not ConsoleAdmin.service_delete

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.saves_through_service() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.deletes_through_service() and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not self.editable(request, obj if change else None):
            raise PermissionDenied
        saved = self.service_save(request, obj, form, change)
        if saved is not obj:  # the admin logs and redirects with the instance it built: make it the saved one
            obj.pk = saved.pk
            obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Sequence[BaseFormSet], change: bool) -> None:
        """Many-to-many fields are the service's to save (it has them in ``form.cleaned_data``); inlines are
        read-only in this console, so there is nothing else to save."""
        for formset in formsets:  # what the admin's change message reads after a save
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []  # type: ignore[attr-defined]

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.service_delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.service_delete(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        """What a deletion takes with it is the service's to decide (a device's box records go with it), not the
        permissions of the related records' own admins, which delete nothing themselves."""
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def editable(self, request: HttpRequest, obj: Any = None) -> bool:
        """Whether the object page has a field to change (if not: no Save buttons, and a post is refused)."""
        if obj is None:
            return self.has_add_permission(request)
        if not self.has_change_permission(request, obj) or not self.saves_through_service():
            return False
        fields = set(self.get_fields(request, obj))
        return bool(fields - set(self.get_readonly_fields(request, obj)))

    def _refused(self, request: HttpRequest, exc: DomainError) -> HttpResponse:
        self.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, object_id) if object_id else None
        extra_context = dict(extra_context or {})
        if object_id and obj is not None:
            if request.method == "POST" and not self.editable(request, obj):
                raise PermissionDenied  # a record without an editable field is never saved from this page
            if not self.editable(request, obj):
                extra_context |= {"show_save": False, "show_save_and_continue": False}
                extra_context |= {"show_save_and_add_another": False}
            extra_context["object_actions"] = self.visible_actions(request, obj)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:  # raised inside the admin's transaction, which rolled back
            return self._refused(request, exc)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:  # back to the object's page, which is still there
            self.message_user(request, exc.message, messages.ERROR)
            return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[object_id]))

    # --- buttons on the object's page ---------------------------------------------------------------------------------

    def visible_actions(self, request: HttpRequest, obj: Any) -> list[ObjectAction]:
        if not self.has_change_permission(request, obj):
            return []
        return [a for a in self.object_actions if not a.shown or getattr(self, a.shown)(obj)]

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_act"
        view = self.admin_site.admin_view(self.object_action_view)
        return [path("<path:object_id>/act/<str:name>/", view, name=name), *super().get_urls()]

    def object_action_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponseBase:
        action = next((a for a in self.object_actions if a.name == name), None)
        obj = self.get_object(request, object_id)
        if action is None or obj is None:
            raise Http404("no such object or action")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        page = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        if action not in self.visible_actions(request, obj):
            self.message_user(request, f"“{action.label}” does not apply to {obj} now.", messages.WARNING)
            return redirect(page)
        confirmed = request.method == "POST" and (not action.asks or "confirmed" in request.POST)
        form = action.form(request.POST if confirmed else None) if action.form else None
        if confirmed and (form is None or form.is_valid()):
            try:
                message = getattr(self, action.run)(request, obj, form.cleaned_data if form else {})
            except DomainError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            else:
                if isinstance(message, HttpResponseBase):
                    return message
                self.message_user(request, message, messages.SUCCESS)
            return redirect(page)
        if request.method == "POST" and not confirmed and not action.asks:
            return redirect(page)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "object": obj,
            "action": action,
            "form": form,
            "title": f"{action.label}: {obj}",
            "object_url": page,
        }
        return TemplateResponse(request, "admin/portal/object_action.html", context)

    def run_one(self, request: HttpRequest, operation: str, obj: Any) -> str:
        """A button's work: the list action's operation over this one object. Left alone, it says why (a
        ``NotDone`` the object's page shows); done, it returns the message ("Disabled STB-1.")."""
        report = jobs.run_now(name=operation, ids=[obj.pk], actor=request.user)
        if report.refused:
            raise NotDone(f"not changed: {next(iter(report.refused))}")
        verb = report.operation.done_verb
        return f"{verb[:1].upper()}{verb[1:]} {obj}."

    # --- list actions over many objects --------------------------------------------------------------------------

    def bulk(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        operation: str,
        *,
        params: dict[str, Any] | None = None,
        title: str = "",
    ) -> HttpResponse | None:
        """Run ``operation`` over the selection: at once, with a per-object message, when it is small; as a
        background job with a live progress page when it is not."""
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        if len(ids) <= jobs.inline_limit():
            report = jobs.run_now(name=operation, ids=ids, params=params, actor=request.user)
            self.message_user(request, report.sentence(), messages.WARNING if report.refused else messages.SUCCESS)
            return None
        op = jobs.operation(operation)
        name = self.opts.verbose_name if len(ids) == 1 else self.opts.verbose_name_plural
        job = jobs.job_start(
            name=operation,
            ids=ids,
            params=params,
            actor=request.user,
            title=title or f"{op.verb.capitalize()} {len(ids)} {name}",
        )
        return HttpResponseRedirect(reverse("admin:portal_bulkjob_change", args=[job.pk]))


# --- state badges -------------------------------------------------------------------------------------------------
# One colour per meaning, whichever app the state belongs to (portal/static/portal/admin.css: .badge-<tone>).
TONES = {
    "ok": {"activated", "completed", "provisioned", "succeeded", "finished", "active", "yes"},
    "bad": {"rejected", "failed", "corrupted", "expired", "disabled"},
    "busy": {"in_progress", "running", "sent", "pending", "notactivated", "queued"},
}


def tone(state: object) -> str:
    word = str(state).lower()
    return next((name for name, words in TONES.items() if word in words), "idle")


def badge(state: object, label: object = None) -> str:
    """A coloured state badge: ``badge(device.state, device.get_state_display())``."""
    return format_html('<span class="badge badge-{}" data-state="{}">{}</span>', tone(state), state, label or state)

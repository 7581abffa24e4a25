"""The moderation console: rooms, join requests, spectators, bans and timeouts, invitations,
invite links, room moderators and the audit trail (CSV export).

Every state change goes through ``rooms.services``, which re-checks ``rooms.access``.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.utils import timezone

from rooms import exports, invite_links, moderation, services
from rooms.models import AuditEntry, Ban, Invitation, InviteLink, JoinRequest, Room, RoomModerator, Spectator

ADMIN_TIMEOUT_SECONDS = 10 * 60


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return [("yes", "Past expiry"), ("no", "Not past expiry")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=timezone.now())
        if self.value() == "no":
            return queryset.filter(expires_at__gt=timezone.now())
        return queryset


def _run_each(modeladmin, request, queryset, action, verb: str) -> None:
    """Apply a service to each selected row and report successes and refusals."""
    done = 0
    for obj in queryset:
        try:
            action(obj)
            done += 1
        except (PermissionDenied, ValidationError) as exc:
            modeladmin.message_user(request, f"{obj}: {exc}", level=messages.WARNING)
    if done:
        modeladmin.message_user(request, f"{verb} {done} item(s).", level=messages.SUCCESS)


class JoinRequestInlineForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[("", "—"), ("approve", "Approve"), ("deny", "Deny")], required=False, label="Decide"
    )

    class Meta:
        model = JoinRequest
        fields = []


class JoinRequestInline(admin.TabularInline):
    model = JoinRequest
    form = JoinRequestInlineForm
    fields = ["display_name", "user", "message", "status", "created_at", "decided_by", "decision"]
    readonly_fields = ["display_name", "user", "message", "status", "created_at", "decided_by"]
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False


class SpectatorInline(admin.TabularInline):
    model = Spectator
    fields = ["display_name", "user", "joined_at", "last_seen_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Spectators present"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(left_at__isnull=True).select_related("user")

    def has_add_permission(self, request, obj=None):
        return False


class RoomModeratorInline(admin.TabularInline):
    """Moderators besides the creator; adding and removing go through ``rooms.moderation``."""

    model = RoomModerator
    fields = ["user", "added_by", "created_at"]
    readonly_fields = ["added_by", "created_at"]
    raw_id_fields = ["user"]
    extra = 0

    def has_change_permission(self, request, obj=None):
        return False


ACCESS_FIELDS = (
    "max_spectators",
    "require_approval",
    "auto_approve_timeout",
    "approval_ttl",
    "listed",
    "waiting_message",
)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "training_session",
        "creator",
        "access_level",
        "status",
        "present",
        "max_spectators",
        "require_approval",
        "locked",
        "listed",
        "expires_at",
    ]
    list_filter = ["status", "access_level", ExpiredFilter, "require_approval", "locked", "listed", "spectator_mode"]
    search_fields = ["code", "name", "creator__username", "training_session__id", "training_session__name"]
    list_select_related = ["training_session", "creator"]
    readonly_fields = ["id", "code", "access_level", "password_hash", "created_at", "closed_at", "status", "locked"]
    raw_id_fields = ["training_session", "creator"]
    filter_horizontal = ["allowed_users"]
    inlines = [RoomModeratorInline, JoinRequestInline, SpectatorInline]
    actions = ["close_rooms", "expire_rooms_now", "lock_rooms", "unlock_rooms", "admit_all_waiting"]
    date_hierarchy = "created_at"

    @admin.display(description="present")
    def present(self, room):
        return room.spectators.filter(left_at__isnull=True).count()

    def has_add_permission(self, request):
        # Rooms are created through the API and the owner pages, which set the code and password.
        return False

    def save_model(self, request, obj, form, change):
        # Access settings go through the service, which re-checks access and applies side
        # effects (turning approval off admits everyone waiting).
        access_changes = {name: form.cleaned_data[name] for name in form.changed_data if name in ACCESS_FIELDS}
        for name in access_changes:
            setattr(obj, name, form.initial[name])
        super().save_model(request, obj, form, change)
        if access_changes:
            try:
                services.room_access_update(room=obj, actor=request.user, **access_changes)
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, f"Access settings not changed: {exc}", level=messages.WARNING)

    def save_related(self, request, form, formsets, change):
        # The allowed users go through the service too, which audits who was added and removed.
        wanted = None
        if "allowed_users" in form.changed_data:
            wanted = [user.get_username() for user in form.cleaned_data["allowed_users"]]
            form.cleaned_data["allowed_users"] = list(form.instance.allowed_users.all())
        super().save_related(request, form, formsets, change)
        if wanted is not None:
            try:
                services.room_access_update(room=form.instance, actor=request.user, allowed_users=wanted)
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, f"Allowed users not changed: {exc}", level=messages.WARNING)

    def save_formset(self, request, form, formset, change):
        if formset.model is RoomModerator:
            return self._save_moderators(request, form.instance, formset)
        if formset.model is not JoinRequest:
            return super().save_formset(request, form, formset, change)
        # Writes nothing (the form has no model fields) but sets the formset's
        # new/changed/deleted_objects, which the admin's change message reads.
        formset.save(commit=False)
        for inline_form in formset.forms:
            decision = inline_form.cleaned_data.get("decision") if hasattr(inline_form, "cleaned_data") else None
            if not decision or inline_form.instance.pk is None:
                continue
            try:
                services.join_request_decide(
                    join_request=inline_form.instance, approver=request.user, approved=decision == "approve"
                )
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, f"{inline_form.instance}: {exc}", level=messages.WARNING)
        return None

    def _save_moderators(self, request, room, formset):
        formset.save(commit=False)
        try:
            for moderator in formset.deleted_objects:
                moderation.moderator_remove(moderator=moderator, actor=request.user)
            for moderator in formset.new_objects:
                moderation.moderator_add(room=room, username=moderator.user.get_username(), actor=request.user)
        except (PermissionDenied, ValidationError) as exc:
            self.message_user(request, f"Moderators not changed: {exc}", level=messages.WARNING)

    @admin.action(description="Lock selected rooms (nobody new gets in)")
    def lock_rooms(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda room: moderation.room_lock(room=room, actor=request.user, locked=True),
            "Locked",
        )

    @admin.action(description="Unlock selected rooms")
    def unlock_rooms(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda room: moderation.room_lock(room=room, actor=request.user, locked=False),
            "Unlocked",
        )

    @admin.action(description="Admit everyone waiting in selected rooms")
    def admit_all_waiting(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda room: moderation.join_requests_admit_all(room=room, actor=request.user),
            "Admitted everyone waiting in",
        )

    @admin.action(description="Close selected rooms")
    def close_rooms(self, request, queryset):
        _run_each(self, request, queryset, lambda room: services.room_close(room=room, actor=request.user), "Closed")

    @admin.action(description="Run the expiry sweep now")
    def expire_rooms_now(self, request, queryset):
        count = services.rooms_expire()
        self.message_user(request, f"{count} room(s) expired.", level=messages.SUCCESS)


@admin.register(JoinRequest)
class JoinRequestAdmin(admin.ModelAdmin):
    list_display = ["display_name", "user", "room", "status", "created_at", "decided_by", "decided_at"]
    list_filter = ["status", "auto_approved"]
    search_fields = ["display_name", "user__username", "room__code"]
    list_select_related = ["room", "user", "decided_by"]
    readonly_fields = [f.name for f in JoinRequest._meta.fields]
    actions = ["approve", "deny"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Approve selected requests")
    def approve(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.select_related("room"),
            lambda jr: services.join_request_decide(join_request=jr, approver=request.user, approved=True),
            "Approved",
        )

    @admin.action(description="Deny selected requests")
    def deny(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.select_related("room"),
            lambda jr: services.join_request_decide(join_request=jr, approver=request.user, approved=False),
            "Denied",
        )


class PresentFilter(admin.SimpleListFilter):
    title = "present"
    parameter_name = "present"

    def lookups(self, request, model_admin):
        return [("yes", "Present"), ("no", "Left")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(left_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(left_at__isnull=False)
        return queryset


@admin.register(Spectator)
class SpectatorAdmin(admin.ModelAdmin):
    list_display = ["display_name", "user", "room", "joined_at", "left_at", "left_reason"]
    list_filter = [PresentFilter, "left_reason"]
    search_fields = ["display_name", "user__username", "room__code"]
    list_select_related = ["room", "user"]
    readonly_fields = [f.name for f in Spectator._meta.fields]
    actions = ["kick", "ban", "time_out", "send_to_waiting"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Kick selected spectators")
    def kick(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.filter(left_at__isnull=True).select_related("room"),
            lambda spectator: services.spectator_kick(spectator=spectator, actor=request.user),
            "Kicked",
        )

    @admin.action(description="Ban selected spectators from their rooms")
    def ban(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.select_related("room", "user"),
            lambda spectator: services.ban_create(
                room=spectator.room, actor=request.user, spectator=spectator, reason="Banned from the admin."
            ),
            "Banned",
        )

    @admin.action(description="Time selected spectators out for 10 minutes")
    def time_out(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.filter(left_at__isnull=True).select_related("room", "user"),
            lambda spectator: moderation.timeout_create(
                room=spectator.room,
                actor=request.user,
                spectator=spectator,
                duration_seconds=ADMIN_TIMEOUT_SECONDS,
                reason="Timed out from the admin.",
            ),
            "Timed out",
        )

    @admin.action(description="Send selected spectators back to the waiting room")
    def send_to_waiting(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.filter(left_at__isnull=True).select_related("room", "user"),
            lambda spectator: moderation.spectator_send_to_waiting(spectator=spectator, actor=request.user),
            "Sent back",
        )


class BanKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("ban", "Bans"), ("timeout", "Timeouts")]

    def queryset(self, request, queryset):
        if self.value() == "ban":
            return queryset.filter(expires_at__isnull=True)
        if self.value() == "timeout":
            return queryset.filter(expires_at__isnull=False)
        return queryset


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "user",
        "room",
        "scope",
        "expires_at",
        "reason",
        "banned_by",
        "created_at",
        "lifted_at",
    ]
    list_filter = [BanKindFilter, "scope", "lifted_at"]
    search_fields = ["display_name", "user__username", "room__code"]
    list_select_related = ["room", "user", "banned_by"]
    readonly_fields = [
        "room",
        "user",
        "anon_key",
        "display_name",
        "scope",
        "expires_at",
        "banned_by",
        "created_at",
        "lifted_at",
        "lifted_by",
    ]
    actions = ["lift"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Lift selected bans and end selected timeouts")
    def lift(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.select_related("room"),
            lambda ban: services.ban_lift(ban=ban, actor=request.user),
            "Lifted",
        )


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["user", "room", "invited_by", "created_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["user__username", "room__code"]
    list_select_related = ["room", "user", "invited_by"]
    readonly_fields = ["room", "user", "invited_by", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected invitations")
    def revoke(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.select_related("room"),
            lambda invitation: services.invitation_revoke(invitation=invitation, actor=request.user),
            "Revoked",
        )


@admin.register(InviteLink)
class InviteLinkAdmin(admin.ModelAdmin):
    list_display = ["pk", "room", "user", "label", "grants_password", "uses", "created_by", "expires_at", "revoked_at"]
    list_filter = ["grants_password", "revoked_at"]
    search_fields = ["room__code", "user__username", "label"]
    list_select_related = ["room", "user", "created_by"]
    # Only a hash of the secret is stored; it is of no use to anyone and stays off the page.
    exclude = ["secret_hash"]
    readonly_fields = [f.name for f in InviteLink._meta.fields if f.name != "secret_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Links are created on the owner page and through the API, which show the token once.
        return False

    @admin.action(description="Revoke selected invite links")
    def revoke(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.select_related("room", "user"),
            lambda link: invite_links.invite_link_revoke(link=link, actor=request.user),
            "Revoked",
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "room_code", "action", "actor_name", "target_name", "ip"]
    list_filter = ["action"]
    search_fields = ["room_code", "actor_name", "target_name", "ip"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    date_hierarchy = "created_at"
    actions = ["export_csv"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Export selected entries as CSV")
    def export_csv(self, request, queryset):
        response = StreamingHttpResponse(
            exports.audit_csv_chunks(queryset.order_by("-created_at", "-id")), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response

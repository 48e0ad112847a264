"""SWAN v2 endpoints backed by the directory: one view per operation, thin."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.params import (
    check_body_size,
    check_path_segment,
    clean_destination,
    get_bool,
    get_choice,
    get_str,
    get_str_list,
    request_params,
)
from pbx.api.read_cache import live_cache
from pbx.directory import lookups
from pbx.errors import Conflict
from pbx.gateway.connection import pbx_gateway
from pbx.live import selectors as live_selectors
from pbx.live import services
from pbx.live import version as live_version
from pbx.models import PbxUser
from pbx.values import clean_extension


class SwanView(APIView):
    """Base of every SWAN endpoint: parameters parsed the SWAN way (pbx.api.params)."""

    body_array_param: str | None = None
    metadata_class = None  # OPTIONS is not part of the contract: a 405 envelope
    # Answers read from the listener's live state say whether it is current: the contract's
    # result shapes are fixed, so a header tells (`X-Swan-Live-State: live` or `stale`).
    reads_live_state = False

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.reads_live_state and response.status_code < 400:
            live = self.live_probe(request).link_live
            response["X-Swan-Live-State"] = "live" if live else "stale"
        return response

    def live_probe(self, request: Request, *, catch_up: bool = False) -> live_version.Probe:
        """This request's one look at the shared live state; `catch_up` also brings the read
        cache up to date with it (pbx/api/read_cache.py)."""
        probe = getattr(request, "swan_probe", None)
        if probe is None:
            probe = live_cache.catch_up() if catch_up else live_version.probe()
            request.swan_probe = probe
        return probe

    def initial(self, request: Request, *args, **kwargs) -> None:
        """After the key and the rate: all input checked before the view acts on any of it."""
        super().initial(request, *args, **kwargs)
        check_body_size(request)
        for name, value in kwargs.items():
            check_path_segment(name, value)
        self.params(request)

    def params(self, request: Request) -> dict:
        """The request's parameters, parsed and checked once (`initial` does it up front)."""
        if not hasattr(request, "swan_params"):
            request.swan_params = request_params(request, body_array_param=self.body_array_param)
        return request.swan_params

    def extension_user(self, request: Request, extension: str, params: dict) -> PbxUser:
        """The user of the path's extension among the key's companies (`company` narrows it)."""
        return lookups.user_get(
            client=request.user,
            extension=clean_extension(extension),
            company=get_str(params, "company"),
        )


class UsernameGetView(SwanView):
    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        name = lookups.user_name_for_extension(
            client=request.user,
            extension=clean_extension(extension),
            company=get_str(params, "company"),
        )
        return Response({"username": name})


class BlfUsersListView(SwanView):
    reads_live_state = True

    def get(self, request: Request, company: str) -> Response:
        params = self.params(request)
        departments = get_str_list(params, "departments")
        with_mobile = get_bool(params, "withMobile")
        self.live_probe(request, catch_up=True)
        rows = live_cache.blf_users(
            client=request.user, company=company, departments=departments, with_mobile=with_mobile
        )
        return Response(rows)


class CompanyNumbersListView(SwanView):
    def get(self, request: Request, company: str) -> Response:
        params = self.params(request)
        rows = lookups.company_numbers(
            client=request.user, company=company, in_use_only=get_bool(params, "in_use")
        )
        return Response(rows)


class UserStatusView(SwanView):
    reads_live_state = True

    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        extension = clean_extension(extension)
        company = get_str(params, "company")
        self.live_probe(request, catch_up=True)
        return Response(
            live_cache.user_status(client=request.user, extension=extension, company=company)
        )

    def post(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        user = self.extension_user(request, extension, params)
        status = get_choice(params, "status", choices=services.SETTABLE_STATUSES)
        reason = get_str(params, "reason", max_length=120) or ""
        with pbx_gateway() as gateway:
            result = services.user_status_set(
                gateway=gateway, user=user, status=status, reason=reason
            )
        return Response(result)


class CallPlaceView(SwanView):
    def post(self, request: Request, destination: str) -> Response:
        params = self.params(request)
        destination = clean_destination(destination)
        extension = clean_extension(
            get_str(params, "private_source", required=True, max_length=20), name="private_source"
        )
        company = get_str(params, "company", required=True)
        user = lookups.user_get(client=request.user, extension=extension, company=company)
        with pbx_gateway() as gateway:
            success = services.call_place(gateway=gateway, user=user, destination=destination)
        return Response({"success": success})


class UserUnregisterView(SwanView):
    def post(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        user = self.extension_user(request, extension, params)
        with pbx_gateway() as gateway:
            success = services.user_unregister(gateway=gateway, user=user)
        return Response({"success": success})


class CurrentCallsListView(SwanView):
    reads_live_state = True

    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        user = self.extension_user(request, extension, params)
        return Response(live_selectors.current_calls(user=user))


class WebPhoneUsernameView(SwanView):
    reads_live_state = True

    def get(self, request: Request, extension: str) -> Response:
        params = self.params(request)
        user = self.extension_user(request, extension, params)
        phone = live_selectors.web_phone(user=user)
        if phone["is_registered"]:
            raise Conflict(
                _("The webphone of extension %(extension)s is already registered.")
                % {"extension": user.extension},
                result=phone,
            )
        return Response(phone)

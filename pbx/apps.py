from django.apps import AppConfig


class PbxConfig(AppConfig):
    verbose_name = "PBX"
    name = "pbx"

    def ready(self) -> None:
        from pbx import checks  # noqa: F401  (registers the system checks)
        from pbx.live import directory_changes

        directory_changes.connect()

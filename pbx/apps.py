from django.apps import AppConfig


class PbxConfig(AppConfig):
    verbose_name = "PBX"
    name = "pbx"

from django.apps import AppConfig


class SpectatorSiteConfig(AppConfig):
    name = "spectator_site"
    verbose_name = "Spectator site"

    def ready(self):
        from spectator_site.logging_context import record_factory_install
        from spectator_site.observability import instrumentation_install

        record_factory_install()
        instrumentation_install()

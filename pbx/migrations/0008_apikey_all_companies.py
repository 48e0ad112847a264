from django.db import migrations, models


def all_companies_for_keys_without_companies(apps, schema_editor):
    # Until now a key without companies saw every company: say so explicitly.
    ApiKey = apps.get_model("pbx", "ApiKey")
    ApiKey.objects.filter(companies__isnull=True).update(all_companies=True)


class Migration(migrations.Migration):
    dependencies = [
        ("pbx", "0007_no_control_characters"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="all_companies",
            field=models.BooleanField(
                default=False,
                help_text="The key sees every company, present and future; leave the companies empty.",
                verbose_name="all companies",
            ),
        ),
        migrations.AlterField(
            model_name="apikey",
            name="companies",
            field=models.ManyToManyField(
                blank=True,
                help_text="The companies a limited key sees. None left: the key sees nothing.",
                related_name="api_keys",
                to="pbx.company",
                verbose_name="companies",
            ),
        ),
        migrations.RunPython(
            all_companies_for_keys_without_companies, migrations.RunPython.noop
        ),
    ]

from django.conf import settings
from django.http import HttpResponse
from django.urls import re_path


def hello(request):
    return HttpResponse(f"django {settings.SETTINGS_MODULE} {request.path}",
                        content_type="text/plain")


urlpatterns = [re_path(r"^.*$", hello)]

"""The role each ``ServerService`` method needs when the server has tokens: viewers read jobs,
operators also submit and cancel them (a method not listed needs ``admin``)."""

from __future__ import annotations

METHOD_ROLES = {
    "ServerService/GetJob": "viewer",
    "ServerService/WatchJob": "viewer",
    "ServerService/ListJobs": "viewer",
    "ServerService/SubmitJob": "operator",
    "ServerService/CancelJob": "operator",
}

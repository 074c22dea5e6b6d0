"""Domain errors; the API turns them into 4xx JSON, the CLI into a message naming the fix."""


class OpenOpsError(Exception):
    status = 400


class UnknownUser(OpenOpsError):
    status = 404


class InvalidRequest(OpenOpsError):
    status = 422


class NotFound(OpenOpsError):
    status = 404

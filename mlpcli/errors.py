"""The errors mlpcli reports to its users: one clear line each, exit code 1."""


class MlpcliError(Exception):
    """An error the user can fix; its message is shown as one line, without a traceback."""


class ConfigError(MlpcliError):
    """A config file or override is missing, malformed or invalid."""


class DataError(MlpcliError):
    """A dataset file is missing, corrupt, or could not be fetched."""


class CheckpointError(MlpcliError):
    """A checkpoint cannot be read or does not match the documented format."""


class ImageError(MlpcliError):
    """An image cannot be read or holds no digit."""


class TrainingDiverged(MlpcliError):
    """The loss became NaN or infinite."""

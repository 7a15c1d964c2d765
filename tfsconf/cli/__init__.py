"""The command line. tfsconf uses no pydantic plugins; skipping their discovery (a scan of
every installed distribution's entry points, slow beside TensorFlow's many packages) keeps
`tfsconf validate` close to the cost of importing pydantic itself."""

import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

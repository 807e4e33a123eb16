"""The GDPR shell: API (`/v1/gdpr/...` and the export download), CLI (`abowerk gdpr ...`) and
worker tasks around the `compliance` domain package."""

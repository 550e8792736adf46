"""The domain: rules and state changes, independent of HTTP. Handlers and jobs call it."""

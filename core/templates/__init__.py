"""Templates: named, versioned recipes of steps for quick demos (core.templates.service)."""

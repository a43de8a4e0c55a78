"""Knowledge computed from code: inferred and learned API pairs."""

"""Code generation: SymPy printer and Jinja2 templates -> Numba simulator modules in generated/."""

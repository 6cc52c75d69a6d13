"""The plugin stage: how plugins reach liftbench and what they register.

``hookspecs`` declares the registrar hooks, ``manager`` loads the plugins through pluggy and builds the
registry, ``registry`` and ``entries`` hold what was registered (one typed record per kind), and
``options`` types every option a plugin declares. Nothing here runs a lifting or a protocol.
"""

"""Findings that leave the workstation: DICOM SR, RTSTRUCT, the one-page report, de-identification.

Core package: no Qt. Each module is one concept (``deidentify``, ``sr``, ``rtstruct``, ``report``,
``measurements``); ``commands`` registers the headless sub-commands.
"""

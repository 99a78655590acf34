"""crmsync: keeps a sales pipeline honest across Salesforce and HubSpot."""

__version__ = "0.1.0"

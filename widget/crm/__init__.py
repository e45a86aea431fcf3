"""The CRM directory: records of Contacts, Leads, Accounts and Deals known by the CRM's own ids, their email
addresses and relations, and the ways they arrive (CSV import, the JSON API, the command line).

- directory.py: the records themselves: validation, upsert and delete in the caller's transaction, and the
  re-link of past mail when addresses arrive that the directory did not know.
- csv_import.py: reading a CRM's CSV export (Zoho's headers recognised without mapping), mapping its columns,
  checking every row, importing the good ones.
- commands.py: `flask --app widget import-records FILE.csv --module M` and `flask --app widget api-token NAME`.
- records.py: records and the addresses that count as theirs; listing.py: a record's related lists;
  visibility.py: who may see which mail and meetings.
"""

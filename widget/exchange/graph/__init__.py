"""The Microsoft Graph adapter of the mailbox port (Exchange Online): the only code that imports msal or speaks
Graph. client.py holds tokens and HTTP, mail.py the mail folders, calendar.py the calendar and To Do, scheduling.py
free/busy and people, adapter.py the port itself."""

"""The only code that imports exchangelib: the mailbox port and its EWS adapter."""

"""The e-mail outbox: mails are rows written with the change that causes them, sent by the
worker over SMTP after commit (:mod:`saas.mail.sender`)."""

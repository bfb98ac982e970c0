"""HTML replies (multipart/alternative, a few HTML-only), one dict per
email in writing order. `layout` picks the client's HTML in html_render.py;
gold is `new` (the customer's text without quote and signature) unless
`gold` is given."""

from html_render import RENDER, esc, ours_html, q
from mime import boundary, multipart, raw_part, text_part

US = ("Acme Support", "support@example.com")


def hdr_en(to, subject, sent="Tuesday, March 5, 2024 10:12 AM", frm="Acme Support <support@example.com>"):
    return [("From", frm), ("Sent", sent), ("To", to), ("Subject", subject)]


HTML = [
# 1 Gmail, English
dict(client="gmail", lang="en", cust=("Rachel Adams", "rachel.adams@example.org"), us=US,
 subject="Re: Team invitation expired", date="Tue, 5 Mar 2024 10:40:02 +0000",
 attr="On Tue, Mar 5, 2024 at 10:12\u202fAM Acme Support <support@example.com> wrote:",
 orig="Hi Rachel,\n\nInvitations expire after 7 days. I've sent a fresh one to\nmark@example.org.\n\nBest,\nTom\nAcme Support",
 new="Thanks Tom, Mark has joined the team.\n\nRachel", charset="UTF-8", cte="quoted-printable"),
# 2 Gmail, French, Gmail signature
dict(client="gmail", lang="fr", cust=("Pauline Girard", "pauline.girard@fr.example"), us=("Service client Acme", "support@example.com"),
 subject="Re: Changement de mot de passe", date="Tue, 5 Mar 2024 11:22:15 +0100",
 attr="Le mar. 5 mars 2024 à 10:12, Service client Acme <support@example.com> a écrit :",
 orig="Bonjour Pauline,\n\nVous pouvez changer votre mot de passe depuis Profil > Sécurité.\n\nCordialement,\nLéa",
 new="Bonjour Léa,\n\nC'est fait, merci pour votre aide.\n\nBonne journée,\nPauline",
 sig="Pauline Girard\nCheffe de projet – Girard Conseil\n+33 6 12 34 56 78", charset="UTF-8", cte="quoted-printable"),
# 3 Gmail, German, new quote container class
dict(client="gmail", v2=True, lang="de", cust=("Julia Richter", "julia.richter@de.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="Re: Rücksendung Bestellung 40112", date="Tue, 5 Mar 2024 12:02:44 +0100",
 attr="Am Di., 5. März 2024 um 10:12 Uhr schrieb Acme Kundendienst <kundendienst@example.com>:",
 orig="Hallo Frau Richter,\n\nanbei das Rücksendeetikett. Bitte kleben Sie es gut sichtbar auf das Paket.\n\nViele Grüße\nSabine Krüger",
 new="Hallo Frau Krüger,\n\ndas Paket ist heute an DHL übergeben worden.\n\nViele Grüße\nJulia Richter", charset="UTF-8", cte="quoted-printable"),
# 4 Gmail, Spanish, nested history (our email quoted the customer's first one)
dict(client="gmail", lang="es", cust=("Andrea Torres", "andrea.torres@ar.example"), us=("Soporte Acme", "soporte@example.com"),
 subject="Re: Integración con Mercado", date="Tue, 5 Mar 2024 09:55:30 -0300",
 attr="El mar, 5 mar 2024 a las 9:12, Soporte Acme (<soporte@example.com>) escribió:",
 orig="Hola Andrea:\n\nYa activamos la integración. Decinos si ves los pedidos.\n\nSaludos,\nDiego",
 orig_html="<p>Hola Andrea:</p><p>Ya activamos la integración. Decinos si ves los pedidos.</p><p>Saludos,<br>Diego</p><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">El lun, 4 mar 2024 a las 18:40, Andrea Torres (&lt;<a href=\"mailto:andrea.torres@ar.example\">andrea.torres@ar.example</a>&gt;) escribió:<br></div><blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\"><div dir=\"ltr\">Hola, ¿pueden activar la integración con Mercado en nuestra cuenta?<br>Gracias,<br>Andrea</div></blockquote></div>",
 orig_plain="Hola Andrea:\n\nYa activamos la integración. Decinos si ves los pedidos.\n\nSaludos,\nDiego\n\nEl lun, 4 mar 2024 a las 18:40, Andrea Torres (<andrea.torres@ar.example>) escribió:\n\n> Hola, ¿pueden activar la integración con Mercado en nuestra cuenta?\n> Gracias,\n> Andrea",
 new="¡Sí! Ya aparecen los pedidos de hoy. Muchas gracias.\n\nAndrea", charset="UTF-8", cte="quoted-printable"),
# 5 Gmail, Russian
dict(client="gmail", lang="ru", cust=("Наталья Соколова", "n.sokolova@ru.example"), us=("Поддержка Acme", "support@example.com"),
 subject="Re: Ошибка при оплате картой", date="Tue, 5 Mar 2024 13:41:07 +0300",
 attr="вт, 5 мар. 2024 г. в 13:12, Поддержка Acme <support@example.com>:",
 orig="Наталья, здравствуйте!\n\nПлатёж отклонил банк. Попробуйте, пожалуйста, другую карту.\n\nС уважением,\nАнна",
 new="Здравствуйте, Анна!\n\nС другой картой оплата прошла. Спасибо!\n\nНаталья", charset="UTF-8", cte="base64"),
# 6 Gmail, Japanese
dict(client="gmail", lang="ja", cust=("高橋 健", "ken.takahashi@jp.example"), us=("Acme サポート", "support@example.com"),
 subject="Re: CSVの文字化け", date="Tue, 5 Mar 2024 19:05:55 +0900",
 attr="2024年3月5日(火) 18:12 Acme サポート <support@example.com>:",
 orig="高橋様\n\nCSVをUTF-8（BOM付き）で保存していただくと文字化けしません。\n\nAcme サポート 田中",
 new="田中様\n\nBOM付きで保存したら正しく表示されました。\nありがとうございます。\n\n高橋", charset="UTF-8", cte="base64"),
# 7 Gmail, Chinese (Traditional), inline image-free
dict(client="gmail", lang="zh", cust=("陳美玲", "meiling.chen@tw.example"), us=("Acme 客服", "support@example.com"),
 subject="Re: 發票抬頭更改", date="Tue, 5 Mar 2024 16:30:00 +0800",
 attr="Acme 客服 <support@example.com> 於 2024年3月5日 週二 下午4:12寫道：",
 orig="陳小姐您好：\n\n發票抬頭已更改為「美玲設計有限公司」。\n\nAcme 客服 林",
 new="林先生您好：\n\n已收到新的發票，謝謝！\n\n陳美玲", charset="UTF-8", cte="base64"),
# 8 Gmail, Italian, inline answers between split quotes
dict(client="gmail", lang="it", cust=("Chiara Conti", "chiara.conti@it.example"), us=("Assistenza Acme", "assistenza@example.com"),
 subject="Re: Attivazione del modulo ordini", date="Tue, 5 Mar 2024 11:48:21 +0100",
 attr="Il giorno mar 5 mar 2024 alle ore 10:12 Assistenza Acme <assistenza@example.com> ha scritto:",
 orig="Buongiorno Chiara,\n\nDue domande prima di attivare il modulo:\n\nVolete ricevere una notifica per ogni ordine?\n\nChi deve approvare gli ordini sopra 500 €?\n\nGrazie,\nGiulia",
 new="", inline=True,
 html='<div dir="ltr"><br></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">Il giorno mar 5 mar 2024 alle ore 10:12 Assistenza Acme &lt;<a href="mailto:assistenza@example.com">assistenza@example.com</a>&gt; ha scritto:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><p>Buongiorno Chiara,</p><p>Due domande prima di attivare il modulo:</p><p>Volete ricevere una notifica per ogni ordine?</p></blockquote><div><br></div><div>Sì, una notifica per ordine va bene.</div><div><br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><p>Chi deve approvare gli ordini sopra 500 €?</p></blockquote><div><br></div><div>Io stessa, oppure Paolo quando sono in ferie.</div><div><br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><p>Grazie,<br>Giulia</p></blockquote></div>\n',
 plain="Il giorno mar 5 mar 2024 alle ore 10:12 Assistenza Acme <\nassistenza@example.com> ha scritto:\n\n> Buongiorno Chiara,\n>\n> Due domande prima di attivare il modulo:\n>\n> Volete ricevere una notifica per ogni ordine?\n>\n\nSì, una notifica per ordine va bene.\n\n> Chi deve approvare gli ordini sopra 500 €?\n>\n\nIo stessa, oppure Paolo quando sono in ferie.\n\n> Grazie,\n> Giulia\n",
 gold="Buongiorno Chiara,\n\nDue domande prima di attivare il modulo:\n\nVolete ricevere una notifica per ogni ordine?\n\nSì, una notifica per ordine va bene.\n\nChi deve approvare gli ordini sopra 500 €?\n\nIo stessa, oppure Paolo quando sono in ferie.",
 charset="UTF-8", cte="quoted-printable"),
# 9 Gmail, Polish
dict(client="gmail", lang="pl", cust=("Agnieszka Kowalczyk", "a.kowalczyk@pl.example"), us=("Acme Wsparcie", "pomoc@example.com"),
 subject="Re: Eksport do PDF", date="Tue, 5 Mar 2024 14:00:00 +0100",
 attr="wt., 5 mar 2024 o 13:12 Acme Wsparcie <pomoc@example.com> napisał(a):",
 orig="Dzień dobry,\n\nnowa wersja eksportu do PDF jest już dostępna.\n\nPozdrawiamy,\nTomasz",
 new="Dzień dobry,\n\nsprawdziłam – polskie znaki w PDF wyświetlają się poprawnie.\n\nPozdrawiam\nAgnieszka", charset="UTF-8", cte="quoted-printable"),
# 10 Gmail, Turkish
dict(client="gmail", lang="tr", cust=("Burak Aydın", "burak.aydin@tr.example"), us=("Acme Destek", "destek@example.com"),
 subject="Re: Fatura adresi", date="Tue, 5 Mar 2024 15:20:10 +0300",
 attr="Acme Destek <destek@example.com>, 5 Mar 2024 Sal, 15:12 tarihinde şunu yazdı:",
 orig="Merhaba Burak Bey,\n\nFatura adresiniz güncellendi.\n\nSaygılarımızla,\nMehmet",
 new="Teşekkürler Mehmet Bey, yeni faturayı aldım.\n\nBurak", charset="UTF-8", cte="quoted-printable"),
# 11 Outlook desktop 2016+, English
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", lang="en", cust=("Daniel Wright", "daniel.wright@globex.example"), us=US,
 subject="RE: Shared mailbox permissions", date="Tue, 5 Mar 2024 10:33:10 +0000", order="ms",
 hdr=hdr_en("Daniel Wright <daniel.wright@globex.example>", "Re: Shared mailbox permissions"),
 orig="Hi Daniel,\n\nI've given Laura and Omar access to the shared mailbox. They may need\nto sign out and in again.\n\nThanks,\nTom\nAcme Support",
 new="Hi Tom,\n\nBoth can see the mailbox now. Thanks for sorting it out so quickly.\n\nKind regards,\nDaniel", charset="us-ascii", cte="quoted-printable"),
# 12 Outlook desktop 2010, German, windows-1252
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", style="2010", lang="de", lang_word="DE", lang_tag="de-DE",
 cust=("Andreas Neumann", "a.neumann@de.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="AW: Angebot für Wartungsvertrag", date="Tue, 5 Mar 2024 11:07:45 +0100", order="ms",
 hdr=[("Von", "Acme Kundendienst [mailto:kundendienst@example.com]"), ("Gesendet", "Dienstag, 5. März 2024 10:12"), ("An", "Andreas Neumann"), ("Betreff", "Angebot für Wartungsvertrag")],
 orig="Sehr geehrter Herr Neumann,\n\nanbei unser Angebot für den Wartungsvertrag. Es ist bis 31.03. gültig.\n\nMit freundlichen Grüßen\nSabine Krüger",
 new="Sehr geehrte Frau Krüger,\n\nvielen Dank für das Angebot. Wir nehmen es an; die Bestellung folgt per Post.\n\nMit freundlichen Grüßen\n\nAndreas Neumann\nLeiter Einkauf",
 charset="windows-1252", cte="quoted-printable", hcharset="iso-8859-1", hmode="Q"),
# 13 Outlook 2003, English
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", style="2003", lang="en", cust=("George Hall", "george.hall@uk.example"), us=US,
 subject="RE: Licence key not accepted", date="Tue, 5 Mar 2024 09:50:00 -0000",
 hdr=[("From", "Acme Support [mailto:support@example.com] "), ("Sent", "05 March 2024 09:12"), ("To", "George Hall"), ("Subject", "Re: Licence key not accepted")],
 orig="Hello George,\n\nThe key was issued for version 5. Here is a key for version 6:\nAC6-4471-9920-KP31\n\nRegards,\nTom",
 new="Tom,\n\nThe new key works. Many thanks.\n\nGeorge", charset="us-ascii", cte="7bit"),
# 14 Outlook desktop, French, with an inline logo (multipart/related)
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", lang="fr", lang_word="FR", lang_tag="fr-FR",
 cust=("Thomas Lefebvre", "t.lefebvre@fr.example"), us=("Service client Acme", "support@example.com"),
 subject="RE: Devis pour 15 licences", date="Tue, 5 Mar 2024 15:40:00 +0100", order="ms",
 hdr=[("De\u00a0", "Service client Acme <support@example.com> "), ("Envoyé\u00a0", "mardi 5 mars 2024 15:12"), ("À\u00a0", "Thomas Lefebvre <t.lefebvre@fr.example>"), ("Objet\u00a0", "Devis pour 15 licences")],
 orig="Bonjour Monsieur Lefebvre,\n\nVous trouverez ci-joint le devis pour 15 licences.\n\nCordialement,\nLéa",
 new="Bonjour Léa,\n\nMerci. Pouvez-vous ajouter la formation d'une demi-journée au devis ?\n\nCordialement,\nThomas Lefebvre",
 mso_mid="<p class=MsoNormal><img width=120 height=40 style='width:1.25in;height:.4166in' id=\"Image_x0020_1\" src=\"cid:image001.png@01DA6F00.2B3C4D50\" alt=\"Lefebvre SA\"><o:p></o:p></p>\n",
 related=True, charset="iso-8859-1", cte="quoted-printable", hcharset="iso-8859-1", hmode="Q"),
# 15 Outlook desktop, Dutch, answers typed in colour into the unquoted history
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", lang="nl", lang_word="NL", lang_tag="nl-NL",
 cust=("Bram Smit", "bram.smit@nl.example"), us=US,
 subject="RE: Vragen over de migratie", date="Tue, 5 Mar 2024 13:30:00 +0100", order="ms",
 hdr=[("Van", "Acme Support <support@example.com> "), ("Verzonden", "dinsdag 5 maart 2024 12:12"), ("Aan", "Bram Smit <bram.smit@nl.example>"), ("Onderwerp", "Vragen over de migratie")],
 orig="Hoi Bram,\n\nNog twee vragen:\n1. Hoeveel mailboxen gaan mee?\n2. Mogen we in het weekend migreren?\n\nGroet,\nTom",
 orig_mso="<p class=MsoNormal>Hoi Bram,<o:p></o:p></p>\n<p class=MsoNormal><o:p>&nbsp;</o:p></p>\n<p class=MsoNormal>Nog twee vragen:<o:p></o:p></p>\n<p class=MsoNormal>1. Hoeveel mailboxen gaan mee? <span style='color:red'>[Bram] Zeven.</span><o:p></o:p></p>\n<p class=MsoNormal>2. Mogen we in het weekend migreren? <span style='color:red'>[Bram] Ja, zaterdag.</span><o:p></o:p></p>\n<p class=MsoNormal><o:p>&nbsp;</o:p></p>\n<p class=MsoNormal>Groet,<o:p></o:p></p>\n<p class=MsoNormal>Tom<o:p></o:p></p>",
 orig_plain="Hoi Bram,\n\nNog twee vragen:\n1. Hoeveel mailboxen gaan mee? [Bram] Zeven.\n2. Mogen we in het weekend migreren? [Bram] Ja, zaterdag.\n\nGroet,\nTom",
 new="Hoi Tom, zie mijn antwoorden in het rood.\n\nBram", inline=True,
 gold="Hoi Tom, zie mijn antwoorden in het rood.\n\nBram\n\nHoi Bram,\n\nNog twee vragen:\n1. Hoeveel mailboxen gaan mee? [Bram] Zeven.\n2. Mogen we in het weekend migreren? [Bram] Ja, zaterdag.",
 charset="us-ascii", cte="quoted-printable"),
# 16 Outlook desktop, Swedish
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", lang="sv", lang_word="SV", lang_tag="sv-SE",
 cust=("Johan Berg", "johan.berg@se.example"), us=US,
 subject="SV: Fel i lönefilen", date="Tue, 5 Mar 2024 10:20:00 +0100", order="ms",
 hdr=[("Från", "Acme Support <support@example.com> "), ("Skickat", "den 5 mars 2024 10:12"), ("Till", "Johan Berg <johan.berg@se.example>"), ("Ämne", "Fel i lönefilen")],
 orig="Hej Johan,\n\nVi har rättat kolumnordningen i lönefilen. Kan du prova att läsa in den igen?\n\nVänliga hälsningar,\nTom",
 new="Hej Tom,\n\nNu gick inläsningen igenom utan fel. Tack!\n\nMed vänlig hälsning\nJohan Berg", charset="iso-8859-1", cte="quoted-printable", hcharset="iso-8859-1", hmode="Q"),
# 17 Outlook desktop, Czech, windows-1250
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", lang="cs", lang_word="CS", lang_tag="cs-CZ",
 cust=("Tomáš Svoboda", "tomas.svoboda@cz.example"), us=("Acme podpora", "podpora@example.com"),
 subject="RE: Přístup pro nového kolegu", date="Tue, 5 Mar 2024 14:10:00 +0100", order="ms",
 hdr=[("Od", "Acme podpora <podpora@example.com> "), ("Odesláno", "úterý 5. března 2024 14:02"), ("Komu", "Tomáš Svoboda <tomas.svoboda@cz.example>"), ("Předmět", "Přístup pro nového kolegu")],
 orig="Dobrý den,\n\nkolega Jan Král má nyní přístup do systému.\n\nS pozdravem\nKlára",
 new="Dobrý den,\n\nděkuji, Jan se už přihlásil.\n\nS pozdravem\nTomáš Svoboda", charset="windows-1250", cte="quoted-printable", hcharset="iso-8859-2", hmode="Q"),
# 18 Outlook for Mac, English (British dates)
dict(client="outlook-mac", mid="outlook", layout="outlook-mac", lang="en", lang_word="EN-GB",
 cust=("Sophie Turner", "sophie.turner@uk.example"), us=US,
 subject="Re: Direct debit date", date="Tue, 5 Mar 2024 12:55:00 +0000",
 hdr=[("From", "Acme Support <support@example.com>"), ("Date", "Tuesday, 5 March 2024 at 10:12"), ("To", "Sophie Turner <sophie.turner@uk.example>"), ("Subject", "Re: Direct debit date")],
 orig="Hi Sophie,\n\nWe can move your direct debit to the 15th of each month. Shall we?\n\nBest,\nTom",
 new="Hi Tom,\n\nYes please, the 15th suits us better.\n\nThanks,\nSophie", charset="utf-8", cte="quoted-printable"),
# 19 Outlook on the web, English, OWA signature
dict(client="outlook-web", mid="outlook", layout="outlook-web", lang="en", cust=("Michael Young", "michael.young@contoso.example"), us=US,
 subject="Re: Webhook retries", date="Tue, 5 Mar 2024 17:02:00 +0000", order="ms",
 hdr=hdr_en("Michael Young <michael.young@contoso.example>", "Re: Webhook retries", "Tuesday, March 5, 2024 4:12 PM"),
 orig="Hi Michael,\n\nWe retry failed webhooks 5 times with exponential backoff, over about\n2 hours.\n\nThanks,\nTom",
 new="Hi Tom,\n\nThat's good to know; we'll make our endpoint idempotent then.\n\nThanks,\nMichael",
 sig="Michael Young\nPlatform Engineer | Contoso\nmichael.young@contoso.example", charset="iso-8859-1", cte="quoted-printable"),
# 20 Outlook on the web (old), Spanish
dict(client="outlook-web", mid="outlook", layout="outlook-web", old=True, lang="es", lang_tag="es-ES",
 cust=("Elena Navarro", "elena.navarro@es.example"), us=("Soporte Acme", "soporte@example.com"),
 subject="Re: Usuarios duplicados", date="Tue, 5 Mar 2024 12:44:00 +0100", order="ms",
 hdr=[("De", "Soporte Acme <soporte@example.com>"), ("Enviado", "martes, 5 de marzo de 2024 12:12"), ("Para", "Elena Navarro <elena.navarro@es.example>"), ("Asunto", "Usuarios duplicados")],
 orig="Hola Elena:\n\nHemos fusionado los usuarios duplicados. ¿Puedes comprobarlo?\n\nUn saludo,\nDiego",
 new="Hola Diego:\n\nComprobado, ya no hay duplicados.\n\nUn saludo,\nElena", charset="iso-8859-1", cte="quoted-printable", hcharset="iso-8859-1", hmode="Q"),
# 21 Outlook.com, Portuguese
dict(client="outlook-web", mid="outlook", layout="outlook-web", lang="pt", lang_tag="pt-BR",
 cust=("Beatriz Souza", "beatriz.souza@outlook.example"), us=("Suporte Acme", "suporte@example.com"),
 subject="Re: Boleto vencido", date="Tue, 5 Mar 2024 10:50:00 -0300", order="ms",
 hdr=[("De", "Suporte Acme <suporte@example.com>"), ("Enviado", "terça-feira, 5 de março de 2024 10:12"), ("Para", "Beatriz Souza <beatriz.souza@outlook.example>"), ("Assunto", "Boleto vencido")],
 orig="Olá Beatriz,\n\nGeramos um novo boleto com vencimento em 12/03.\n\nAtenciosamente,\nFernanda",
 new="Olá Fernanda,\n\nObrigada, já paguei o novo boleto.\n\nBeatriz", charset="utf-8", cte="quoted-printable"),
# 22 Outlook for iOS, English (old layout)
dict(client="outlook-mobile", mid="outlook", layout="outlook-mobile", lang="en", cust=("Ryan Cooper", "ryan.cooper@example.com"), us=US,
 subject="Re: Meeting room display offline", date="Tue, 5 Mar 2024 08:22:00 -0500",
 hdr=hdr_en("Ryan Cooper <ryan.cooper@example.com>", "Re: Meeting room display offline", "Tuesday, March 5, 2024 8:12:33 AM"),
 orig="Hi Ryan,\n\nCould you restart the display by holding the power button for 10 seconds?\n\nTom",
 new="Restarted, it's back online. Thanks", charset="utf-8", cte="base64"),
# 23 Outlook for Android, German, reference-message container
dict(client="outlook-mobile", mid="outlook", layout="outlook-mobile", container=True, app="Android", lang="de",
 get='<a href="https://aka.example/ghei36">Outlook für Android</a> herunterladen',
 cust=("Nina Keller", "nina.keller@ch.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="Re: Lieferadresse Schweiz", date="Tue, 5 Mar 2024 18:10:00 +0100",
 hdr=[("Von", "Acme Kundendienst <kundendienst@example.com>"), ("Gesendet", "Dienstag, März 5, 2024 5:12 PM"), ("An", "Nina Keller <nina.keller@ch.example>"), ("Betreff", "Lieferadresse Schweiz")],
 orig="Hallo Frau Keller,\n\nwir liefern auch in die Schweiz; die Zollgebühren übernehmen wir.\n\nViele Grüsse\nSabine Krüger",
 new="Super, dann bestelle ich heute noch.\nNina", charset="utf-8", cte="quoted-printable"),
# 24 Outlook for iOS, French, reference-message container
dict(client="outlook-mobile", mid="outlook", layout="outlook-mobile", container=True, lang="fr",
 get='Obtenir <a href="https://aka.example/o0ukef">Outlook pour iOS</a>',
 cust=("Manon Roux", "manon.roux@fr.example"), us=("Service client Acme", "support@example.com"),
 subject="Re: Rendez-vous technicien", date="Tue, 5 Mar 2024 09:05:00 +0100",
 hdr=[("De\u00a0", "Service client Acme <support@example.com>"), ("Date\u00a0", "mardi, 5 mars 2024 à 08:12"), ("À\u00a0", "Manon Roux <manon.roux@fr.example>"), ("Objet\u00a0", "Rendez-vous technicien")],
 orig="Bonjour Manon,\n\nLe technicien peut passer jeudi entre 8 h et 12 h. Cela vous convient ?\n\nLéa",
 new="Jeudi matin c'est parfait.\nMerci !", charset="utf-8", cte="base64"),
# 25 Apple Mail macOS, English
dict(client="apple", layout="apple", lang="en", cust=("Emma Wilson", "emma.wilson@example.com"), us=US,
 subject="Re: Bulk import stuck at 80%", date="Tue, 5 Mar 2024 11:30:00 -0800",
 attr="On Mar 5, 2024, at 10:12\u202fAM, Acme Support <support@example.com> wrote:",
 orig="Hi Emma,\n\nThe import stalled on a row with an invalid date. We've skipped it and\nthe import has finished.\n\nTom",
 new="Thanks Tom! Which row was it? I'd like to fix it in our source file.\n\nEmma", charset="utf-8", cte="quoted-printable"),
# 26 Apple Mail macOS, German
dict(client="apple", layout="apple", lang="de", cust=("Lukas Schneider", "lukas.schneider@de.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="Re: Zugang für Steuerberater", date="Tue, 5 Mar 2024 14:30:00 +0100",
 attr="Am 05.03.2024 um 14:12 schrieb Acme Kundendienst <kundendienst@example.com>:",
 orig="Hallo Herr Schneider,\n\nIhr Steuerberater hat jetzt Lesezugriff auf die Belege.\n\nViele Grüße\nSabine Krüger",
 new="Danke, Frau Krüger – das hat geklappt.\n\nLukas Schneider", charset="utf-8", cte="quoted-printable"),
# 27 iPhone Mail, English
dict(client="apple", agent="ios", layout="ios", mimever="1.0 (1.0)", lang="en", cust=("Olivia Brown", "olivia.brown@example.net"), us=US,
 subject="Re: Delivery window", date="Tue, 5 Mar 2024 13:01:00 -0500",
 attr="On Mar 5, 2024, at 12:12\u202fPM, Acme Support <support@example.com> wrote:",
 orig="Hi Olivia,\n\nThe delivery is scheduled for Thursday between 1 and 5 pm.\n\nTom",
 new="Perfect, someone will be home.", charset="utf-8", cte="quoted-printable"),
# 28 iPhone Mail, French
dict(client="apple", agent="ios", layout="ios", mimever="1.0 (1.0)", lang="fr", tag="Envoyé de mon iPhone", cust=("Hugo Bernard", "hugo.bernard@fr.example"), us=("Service client Acme", "support@example.com"),
 subject="Re: Taille du colis", date="Tue, 5 Mar 2024 17:40:00 +0100",
 attr="Le 5 mars 2024 à 17:12, Service client Acme <support@example.com> a écrit :",
 orig="Bonjour Hugo,\n\nLe colis mesure 60 × 40 × 40 cm et pèse 12 kg.\n\nLéa",
 new="Merci, ça rentrera dans la voiture.\nHugo", charset="utf-8", cte="quoted-printable"),
# 29 iPhone Mail, Japanese
dict(client="apple", agent="ios", layout="ios", mimever="1.0 (1.0)", lang="ja", tag="iPhoneから送信", cust=("伊藤 さくら", "sakura.ito@jp.example"), us=("Acme サポート", "support@example.com"),
 subject="Re: 配送日の変更", date="Tue, 5 Mar 2024 20:15:00 +0900",
 attr="2024/03/05 19:12、Acme サポート <support@example.com>のメール:",
 orig="伊藤様\n\n配送日を3月9日(土)に変更いたしました。\n\nAcme サポート 田中",
 new="ありがとうございます。よろしくお願いします。", charset="utf-8", cte="base64"),
# 30 iPad Mail, Dutch
dict(client="apple", agent="ipad", layout="ios", mimever="1.0 (1.0)", lang="nl", tag="Verstuurd vanaf mijn iPad", cust=("Femke Mulder", "femke.mulder@nl.example"), us=US,
 subject="Re: Kortingscode werkt niet", date="Tue, 5 Mar 2024 21:00:00 +0100",
 attr="Op 5 mrt 2024 om 20:12 heeft Acme Support <support@example.com> het volgende geschreven:",
 orig="Hoi Femke,\n\nDe code LENTE24 is nu weer actief. Probeer het nog eens?\n\nTom",
 new="Gelukt, dank je!", charset="utf-8", cte="quoted-printable"),
# 31 Thunderbird, English, reply below the quote
dict(client="thunderbird", layout="thunderbird", reply_below=True, lang="en", cust=("Paul Harris", "paul.harris@example.org"), us=US,
 subject="Re: LDAP sync skips disabled users", date="Tue, 5 Mar 2024 15:15:00 +0000",
 attr="On 05/03/2024 14:12, Acme Support wrote:",
 orig="Hi Paul,\n\nThat's by design: disabled users are skipped. You can turn it off\nwith the \"Include disabled accounts\" option.\n\nTom",
 new="Thanks Tom, found the option and the sync now includes them.\n\nPaul", sig="Paul Harris\nSystems team", charset="UTF-8", cte="8bit"),
# 32 Thunderbird, German, top-posted
dict(client="thunderbird", layout="thunderbird", lang="de", cust=("Eva Zimmermann", "eva.zimmermann@de.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="Re: SEPA-Mandat", date="Tue, 5 Mar 2024 10:45:00 +0100",
 attr="Am 05.03.24 um 10:12 schrieb Acme Kundendienst:",
 orig="Hallo Frau Zimmermann,\n\nbitte unterschreiben Sie das SEPA-Mandat im Anhang.\n\nViele Grüße\nSabine Krüger",
 new="Hallo Frau Krüger,\n\nanbei das unterschriebene Mandat.\n\nViele Grüße\nEva Zimmermann", charset="UTF-8", cte="8bit"),
# 33 Thunderbird, French, inline answers
dict(client="thunderbird", layout="thunderbird", lang="fr", cust=("Antoine Fournier", "antoine.fournier@fr.example"), us=("Service client Acme", "support@example.com"),
 subject="Re: Paramétrage SMTP", date="Tue, 5 Mar 2024 16:40:00 +0100", inline=True,
 attr="Le 05/03/2024 à 16:12, Service client Acme a écrit :", orig="",
 new="",
 html='<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n  </head>\n  <body>\n    <div class="moz-cite-prefix">Le 05/03/2024 à 16:12, Service client Acme a écrit&nbsp;:<br>\n    </div>\n    <blockquote type="cite" cite="mid:a1b2c3d4e5@mail.example.com"><p>Bonjour Antoine,</p><p>Quel port utilisez-vous pour le SMTP ?</p></blockquote>\n    <p>Le port 587, avec STARTTLS.</p>\n    <blockquote type="cite" cite="mid:a1b2c3d4e5@mail.example.com"><p>L\'authentification est-elle activée ?</p></blockquote>\n    <p>Oui, avec le compte relais@fournier.example.</p>\n    <blockquote type="cite" cite="mid:a1b2c3d4e5@mail.example.com"><p>Cordialement,<br>Léa</p></blockquote>\n    <p>Merci,<br>\n      Antoine</p>\n  </body>\n</html>\n',
 plain="Le 05/03/2024 à 16:12, Service client Acme a écrit :\n> Bonjour Antoine,\n>\n> Quel port utilisez-vous pour le SMTP ?\n\nLe port 587, avec STARTTLS.\n\n> L'authentification est-elle activée ?\n\nOui, avec le compte relais@fournier.example.\n\n> Cordialement,\n> Léa\n\nMerci,\nAntoine\n",
 gold="Bonjour Antoine,\n\nQuel port utilisez-vous pour le SMTP ?\n\nLe port 587, avec STARTTLS.\n\nL'authentification est-elle activée ?\n\nOui, avec le compte relais@fournier.example.\n\nCordialement,\nLéa\n\nMerci,\nAntoine",
 charset="UTF-8", cte="8bit"),
# 34 Yahoo Mail, English
dict(client="yahoo", layout="yahoo", lang="en", cust=("Nancy Baker", "nancy.baker@yahoo.example"), us=US,
 subject="Re: Cancel my subscription", date="Tue, 5 Mar 2024 16:20:00 +0000",
 attr="On Tuesday, March 5, 2024 at 04:12:33 PM GMT, Acme Support <support@example.com> wrote:",
 orig="Hi Nancy,\n\nYour subscription is cancelled; you keep access until March 31.\n\nBest,\nTom",
 new="Thank you for your help.\nNancy", charset="UTF-8", cte="quoted-printable"),
# 35 Yahoo Mail, French, quote container with the ydp prefix of a second reply
dict(client="yahoo", layout="yahoo", ydp="ydpa1b2c3d4", lang="fr", cust=("Chantal Mercier", "chantal.mercier@yahoo.example"), us=("Service client Acme", "support@example.com"),
 subject="Re: Colis non reçu", date="Tue, 5 Mar 2024 19:30:00 +0100",
 attr="Le mardi 5 mars 2024 à 18:12:33 UTC+1, Service client Acme <support@example.com> a écrit :",
 orig="Bonjour Madame Mercier,\n\nLe transporteur indique que le colis a été déposé en point relais.\n\nLéa",
 new="Bonjour,\n\nJe l'ai récupéré ce soir, merci.\n\nChantal Mercier", charset="UTF-8", cte="quoted-printable"),
# 36 Yahoo Mail for Android, English
dict(client="yahoo", agent="yahoo-android", layout="yahoo-android", lang="en", cust=("Steve Ward", "steve.ward@yahoo.example"), us=US,
 subject="Re: Replacement part", date="Tue, 5 Mar 2024 22:00:00 +0000",
 attr2=("On Tue, Mar 5, 2024 at 21:12, Acme Support", "<support@example.com> wrote:"),
 orig="Hi Steve,\n\nThe replacement part ships tomorrow.\n\nTom",
 new="Great, thanks!", charset="UTF-8", cte="quoted-printable"),
# 37 Yandex, Russian, HTML only
dict(client="yandex", layout="yandex", html_only=True, lang="ru", cust=("Алексей Новиков", "a.novikov@yandex.example"), us=("Поддержка Acme", "support@example.com"),
 subject="Re: Смена тарифа", date="Tue, 05 Mar 2024 12:31:00 +0300",
 attr="05.03.2024, 12:12, \"Поддержка Acme\" <support@example.com>:",
 orig="Алексей, здравствуйте!\n\nТариф «Бизнес» подключён с сегодняшнего дня.\n\nС уважением,\nАнна",
 new="Анна, спасибо!\nВсё работает.", sig="С уважением,\nАлексей Новиков", charset="utf-8", cte="base64"),
# 38 Yandex, Turkish
dict(client="yandex", layout="yandex", lang="tr", cust=("Zeynep Kaya", "zeynep.kaya@yandex.example"), us=("Acme Destek", "destek@example.com"),
 subject="Re: Şifre sıfırlama", date="Tue, 05 Mar 2024 14:45:00 +0300",
 attr="05.03.2024, 14:12, \"Acme Destek\" <destek@example.com>:",
 orig="Merhaba Zeynep Hanım,\n\nŞifre sıfırlama bağlantısını tekrar gönderdik.\n\nMehmet",
 new="Bağlantı geldi, teşekkürler.", charset="utf-8", cte="base64"),
# 39 Mail.ru, Russian, signature widget
dict(client="mailru", layout="mailru", lang="ru", cust=("Ольга Лебедева", "olga.lebedeva@mail.example"), us=("Поддержка Acme", "support@example.com"),
 subject="Re[2]: Не вижу заказ в личном кабинете", date="Tue, 05 Mar 2024 15:12:40 +0300",
 attr="Вторник, 5 марта 2024, 15:00 +03:00 от Поддержка Acme <support@example.com>:",
 orig="Ольга, добрый день!\n\nЗаказ привязан к другому адресу. Мы перенесли его в ваш кабинет.\n\nАнна",
 new="Добрый день!\nТеперь заказ виден. Спасибо большое!", sig="Ольга", charset="utf-8", cte="base64"),
# 40 Mail.ru, Russian, HTML only, no signature
dict(client="mailru", layout="mailru", html_only=True, lang="ru", cust=("Павел Егоров", "p.egorov@mail.example"), us=("Поддержка Acme", "support@example.com"),
 subject="Re: Счёт-фактура", date="Tue, 05 Mar 2024 17:00:00 +0300",
 attr="Вторник, 5 марта 2024, 16:12 +03:00 от Поддержка Acme <support@example.com>:",
 orig="Павел, здравствуйте!\n\nСчёт-фактура отправлена по ЭДО.\n\nАнна",
 new="Получили, спасибо.", charset="utf-8", cte="base64"),
# 41 Zoho Mail, English, Zoho signature
dict(client="zoho", layout="zoho", lang="en", cust=("Arjun Nair", "arjun@nair-exports.example"), us=US,
 subject="Re: Multi-currency invoices", date="Tue, 05 Mar 2024 16:30:00 +0530",
 attr="---- On Tue, 05 Mar 2024 15:42:33 +0530 Acme Support <support@example.com> wrote ---",
 attr_html="---- On Tue, 05 Mar 2024 15:42:33 +0530 <b>Acme Support &lt;<a href=\"mailto:support@example.com\" target=\"_blank\">support@example.com</a>&gt;</b> wrote ---",
 orig="Hi Arjun,\n\nMulti-currency invoicing is now enabled on your account.\n\nRegards,\nTom",
 new="Hi Tom,\n\nWorks well, I just sent our first invoice in EUR.", sig="Regards,\nArjun Nair\nNair Exports", charset="UTF-8", cte="7bit"),
# 42 Zoho Mail, Spanish
dict(client="zoho", layout="zoho", lang="es", cust=("Sofía Ramírez", "sofia@ramirez.example"), us=("Soporte Acme", "soporte@example.com"),
 subject="Re: Límite de usuarios", date="Tue, 05 Mar 2024 11:00:00 -0500",
 attr="---- El mar, 05 mar 2024 10:12:33 -0500 Soporte Acme <soporte@example.com> escribió ---",
 attr_html="---- El mar, 05 mar 2024 10:12:33 -0500 <b>Soporte Acme &lt;<a href=\"mailto:soporte@example.com\" target=\"_blank\">soporte@example.com</a>&gt;</b> escribió ---",
 orig="Hola Sofía:\n\nHemos ampliado el límite a 25 usuarios.\n\nSaludos,\nDiego",
 new="¡Gracias Diego! Ya agregamos a los nuevos usuarios.\n\nSofía", charset="UTF-8", cte="quoted-printable"),
# 43 Proton Mail, English
dict(client="proton", layout="proton", lang="en", cust=("Jordan Lee", "jordan.lee@proton.example"), us=US,
 subject="Re: Two-factor recovery", date="Tue, 05 Mar 2024 13:30:00 +0000",
 attr="On Tuesday, March 5th, 2024 at 1:12 PM, Acme Support <support@example.com> wrote:",
 orig="Hi Jordan,\n\nWe've disabled two-factor authentication on your account so you can\nset it up again.\n\nTom",
 new="Thanks, it's set up again with my new phone.\n\nJordan", charset="utf-8", cte="base64"),
# 44 Proton Mail, German
dict(client="proton", layout="proton", lang="de", cust=("Moritz Hahn", "moritz.hahn@proton.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="Re: Datenlöschung", date="Tue, 05 Mar 2024 10:20:00 +0100",
 attr="Am Dienstag, 5. März 2024 um 10:12, Acme Kundendienst <kundendienst@example.com> schrieb:",
 tag_html='Gesendet mit der sicheren E-Mail von <a target="_blank" href="https://proton.example/" rel="noopener noreferrer">Proton Mail</a>.',
 orig="Hallo Herr Hahn,\n\nIhre Daten werden innerhalb von 30 Tagen gelöscht.\n\nViele Grüße\nSabine Krüger",
 new="Danke für die Bestätigung.\nMoritz Hahn", charset="utf-8", cte="quoted-printable"),
# 45 GMX, German
dict(client="gmx", layout="gmx", lang="de", cust=("Petra Wolff", "petra.wolff@gmx.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="Aw: Garantieverlängerung", date="Tue, 5 Mar 2024 15:05:00 +0100",
 hdr=[("Gesendet", "Dienstag, 05. März 2024 um 14:12 Uhr"), ("Von", "\"Acme Kundendienst\" <kundendienst@example.com>"), ("An", "petra.wolff@gmx.example"), ("Betreff", "Garantieverlängerung")],
 orig="Hallo Frau Wolff,\n\ndie Garantie lässt sich um zwei Jahre verlängern (29 €).\n\nViele Grüße\nSabine Krüger",
 new="Hallo Frau Krüger,\n\nja, bitte um zwei Jahre verlängern.\n\nMfG\nPetra Wolff", charset="UTF-8", cte="quoted-printable"),
# 46 WEB.DE, German
dict(client="gmx", layout="gmx", lang="de", cust=("Horst Lange", "horst.lange@web.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="Aw: Re: Adressänderung", date="Tue, 5 Mar 2024 18:40:00 +0100",
 hdr=[("Gesendet", "Dienstag, 05. März 2024 um 18:12 Uhr"), ("Von", "\"Acme Kundendienst\" <kundendienst@example.com>"), ("An", "\"Horst Lange\" <horst.lange@web.example>"), ("Betreff", "Re: Adressänderung")],
 orig="Hallo Herr Lange,\n\nwir haben Ihre neue Adresse gespeichert.\n\nViele Grüße\nSabine Krüger",
 new="Danke schön.\nH. Lange", charset="UTF-8", cte="quoted-printable"),
# 47 Fastmail, English
dict(client="fastmail", layout="fastmail", lang="en", cust=("Alice Murphy", "alice@murphy.example"), us=US,
 subject="Re: DKIM record", date="Tue, 05 Mar 2024 21:30:00 +1100",
 attr="On Tue, 5 Mar 2024, at 21:12, Acme Support wrote:",
 orig="Hi Alice,\n\nYour DKIM record is missing the final quote. Could you fix it in your DNS?\n\nTom",
 new="Fixed, and the check is green now. Thanks!", sig="Alice Murphy", charset="utf-8", cte="quoted-printable"),
# 48 Samsung Email, English
dict(client="samsung", layout="samsung", lang="en", cust=("Laura King", "laura.king@example.com"), us=US,
 subject="Re: Pickup time", date="Tue, 05 Mar 2024 17:45:00 +0000",
 hdr=[("From", "Acme Support <support@example.com>"), ("Date", "05/03/2024  17:12  (GMT+00:00)"), ("To", "Laura King <laura.king@example.com>"), ("Subject", "Re: Pickup time")],
 orig="Hi Laura,\n\nYour order is ready for pickup from 4 pm today.\n\nTom",
 new="Thanks, I'll come by at 5.", charset="UTF-8", cte="base64"),
# 49 Samsung Email, Spanish
dict(client="samsung", layout="samsung", lang="es", tag="Enviado desde mi Galaxy", sep="-------- Mensaje original --------",
 cust=("Javier Moreno", "javier.moreno@es.example"), us=("Soporte Acme", "soporte@example.com"),
 subject="Re: Garantía", date="Tue, 05 Mar 2024 12:30:00 +0100",
 hdr=[("De", "Soporte Acme <soporte@example.com>"), ("Fecha", "5/3/24  12:12  (GMT+01:00)"), ("Para", "javier.moreno@es.example"), ("Asunto", "Garantía")],
 orig="Hola Javier:\n\nLa reparación está cubierta por la garantía.\n\nDiego",
 new="Genial, muchas gracias.", charset="UTF-8", cte="base64"),
# 50 Lotus Notes, English, header table and hr
dict(client="notes", layout="notes", lang="en", cust=("Karen Phillips", "karen.phillips@initech.example"), us=US,
 subject="Re: SAML metadata", date="Tue, 5 Mar 2024 10:50:00 +0100",
 hdr=[("From", "Acme Support <support@example.com>"), ("To", "karen.phillips@initech.example"), ("Date", "05.03.2024 10:12"), ("Subject", "SAML metadata")],
 orig="Hello Karen,\n\nPlease send us your IdP metadata XML so we can finish the SSO setup.\n\nTom",
 new="Hello Tom,\n\nthe metadata file is attached.\n\nRegards,\nKaren Phillips", charset="us-ascii", cte="7bit"),
# 51 Roundcube, Portuguese, reply-intro and signature
dict(client="roundcube", layout="roundcube", lang="pt", cust=("Miguel Santos", "miguel.santos@pt.example"), us=("Suporte Acme", "suporte@example.com"),
 subject="Re: Domínio personalizado", date="Tue, 05 Mar 2024 15:00:00 +0000",
 attr="Em 2024-03-05 14:12, Suporte Acme escreveu:",
 orig="Olá Miguel,\n\nO domínio personalizado foi verificado.\n\nCumprimentos,\nFernanda",
 new="Olá Fernanda,\n\nExcelente, obrigado.\n\nMiguel", sig="Miguel Santos\nSantos & Filhos, Lda.", charset="UTF-8", cte="quoted-printable"),
# 52 Spark, Italian
dict(client="spark", layout="spark", lang="it", cust=("Valentina Greco", "valentina.greco@it.example"), us=("Assistenza Acme", "assistenza@example.com"),
 subject="Re: Accesso negato", date="Tue, 5 Mar 2024 10:30:00 +0100",
 attr="Il 5 mar 2024, 10:12 +0100, Assistenza Acme <assistenza@example.com>, ha scritto:",
 orig="Gentile Valentina,\n\nabbiamo sbloccato il suo account.\n\nGiulia",
 new="Grazie, ora riesco ad entrare.", sig="Valentina", charset="utf-8", cte="quoted-printable"),
# 53 Gmail, Swedish, HTML only reply written below the quote (Android app)
dict(client="gmail", lang="sv", cust=("Maja Nilsson", "maja.nilsson@se.example"), us=US,
 subject="Re: Byte av betalkort", date="Tue, 5 Mar 2024 20:20:00 +0100",
 attr="Den tis 5 mars 2024 kl 19:12 skrev Acme Support <support@example.com>:",
 orig="Hej Maja,\n\nDu kan byta betalkort under Konto > Betalning.\n\nTom",
 new="Tack, det gick bra!\n\nMaja",
 html='<div dir="auto"><br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">Den tis 5 mars 2024 kl 19:12 skrev Acme Support &lt;<a href="mailto:support@example.com">support@example.com</a>&gt;:<br></div><blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex"><p>Hej Maja,</p><p>Du kan byta betalkort under Konto &gt; Betalning.</p><p>Tom</p></blockquote></div></div><div dir="auto"><br></div><div dir="auto">Tack, det gick bra!</div><div dir="auto"><br></div><div dir="auto">Maja</div>\n',
 plain="Den tis 5 mars 2024 kl 19:12 skrev Acme Support <support@example.com>:\n\n> Hej Maja,\n>\n> Du kan byta betalkort under Konto > Betalning.\n>\n> Tom\n\n\nTack, det gick bra!\n\nMaja\n",
 charset="UTF-8", cte="quoted-printable"),
# 54 Outlook on the web, English, forward attached as an email
dict(client="outlook-web", mid="outlook", layout="outlook-web", lang="en", cust=("Kevin Shaw", "kevin.shaw@contoso.example"), us=US,
 subject="Re: Bounce when emailing your sales team", date="Tue, 5 Mar 2024 11:11:00 +0000", order="ms",
 hdr=hdr_en("Kevin Shaw <kevin.shaw@contoso.example>", "Re: Bounce when emailing your sales team", "Tuesday, March 5, 2024 10:12 AM"),
 orig="Hi Kevin,\n\nCould you send us the bounce message you received? Please attach it\nrather than copy it.\n\nThanks,\nTom",
 new="Hi Tom,\n\nAttached is the bounce I got when writing to sales@example.com.\n\nKevin", attach_bounce=True,
 charset="iso-8859-1", cte="quoted-printable"),
# 55 Gmail, English, with a forwarded email inside the reply
dict(client="gmail", lang="en", cust=("Brian Lewis", "brian.lewis@example.net"), us=US,
 subject="Re: Wrong item received", date="Tue, 5 Mar 2024 16:16:00 +0000",
 attr="On Tue, Mar 5, 2024 at 3:12\u202fPM Acme Support <support@example.com> wrote:",
 orig="Hi Brian,\n\nCould you forward us the dispatch note you received?\n\nTom",
 new="Hi Tom, here it is:\n\n---------- Forwarded message ---------\nFrom: Acme Warehouse <warehouse@example.com>\nDate: Mon, Mar 4, 2024 at 9:00 AM\nSubject: Your order has shipped\nTo: <brian.lewis@example.net>\n\nItem: Blue kettle, 1.7 l (SKU KT-17-BL)\nQuantity: 1\n\nBut I received the red one.\n\nBrian",
 html='<div dir="ltr">Hi Tom, here it is:<br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">---------- Forwarded message ---------<br>From: <strong class="gmail_sendername" dir="auto">Acme Warehouse</strong> <span dir="auto">&lt;<a href="mailto:warehouse@example.com">warehouse@example.com</a>&gt;</span><br>Date: Mon, Mar 4, 2024 at 9:00\u202fAM<br>Subject: Your order has shipped<br>To: &lt;<a href="mailto:brian.lewis@example.net">brian.lewis@example.net</a>&gt;<br></div><br><br><p>Item: Blue kettle, 1.7 l (SKU KT-17-BL)<br>Quantity: 1</p></div><div><br></div><div>But I received the red one.</div><div><br></div><div>Brian</div></div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, Mar 5, 2024 at 3:12\u202fPM Acme Support &lt;<a href="mailto:support@example.com">support@example.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><p>Hi Brian,</p><p>Could you forward us the dispatch note you received?</p><p>Tom</p></blockquote></div>\n',
 plain="Hi Tom, here it is:\n\n---------- Forwarded message ---------\nFrom: Acme Warehouse <warehouse@example.com>\nDate: Mon, Mar 4, 2024 at 9:00\u202fAM\nSubject: Your order has shipped\nTo: <brian.lewis@example.net>\n\n\nItem: Blue kettle, 1.7 l (SKU KT-17-BL)\nQuantity: 1\n\nBut I received the red one.\n\nBrian\n\nOn Tue, Mar 5, 2024 at 3:12\u202fPM Acme Support <support@example.com> wrote:\n\n> Hi Brian,\n>\n> Could you forward us the dispatch note you received?\n>\n> Tom\n",
 charset="UTF-8", cte="quoted-printable"),
# 56 Apple Mail, English, inline answers
dict(client="apple", layout="apple", lang="en", cust=("Hannah Price", "hannah.price@example.com"), us=US,
 subject="Re: Setting up the widget", date="Tue, 5 Mar 2024 12:40:00 -0800", inline=True,
 attr="On Mar 5, 2024, at 11:12\u202fAM, Acme Support <support@example.com> wrote:", orig="", new="",
 html='<html aria-label="message body"><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">Answers below.<br id="lineBreakAtBeginningOfMessage"><div><br><blockquote type="cite"><div>On Mar 5, 2024, at 11:12\u202fAM, Acme Support &lt;support@example.com&gt; wrote:</div><br class="Apple-interchange-newline"><div><p>Which website builder do you use?</p></div></blockquote><div>Squarespace.</div><br><blockquote type="cite"><div><p>Should the widget open automatically?</p></div></blockquote>No, only when clicked.<br><div><br></div><blockquote type="cite"><div><p>Thanks,<br>Tom</p></div></blockquote><br></div></body></html>',
 plain="Answers below.\n\n> On Mar 5, 2024, at 11:12\u202fAM, Acme Support <support@example.com> wrote:\n> \n> Which website builder do you use?\n\nSquarespace.\n\n> Should the widget open automatically?\n\nNo, only when clicked.\n\n> Thanks,\n> Tom\n",
 gold="Answers below.\n\nWhich website builder do you use?\n\nSquarespace.\n\nShould the widget open automatically?\n\nNo, only when clicked.",
 charset="utf-8", cte="quoted-printable"),
# 57 Gmail, Dutch, attribution with a very long name that Gmail does not wrap in HTML
dict(client="gmail", lang="nl", cust=("Thijs van den Berg", "thijs.vandenberg@be.example"), us=("Klantenservice Acme Benelux", "klantenservice@benelux.example.com"),
 subject="Re: Levering naar België", date="Tue, 5 Mar 2024 09:40:00 +0100",
 attr="Op di 5 mrt 2024 om 09:12 schreef Klantenservice Acme Benelux <klantenservice@benelux.example.com>:",
 attr_plain="Op di 5 mrt 2024 om 09:12 schreef Klantenservice Acme Benelux <\nklantenservice@benelux.example.com>:",
 orig="Beste Thijs,\n\nWe leveren binnen twee werkdagen in België.\n\nMet vriendelijke groet,\nInge",
 new="Beste Inge,\n\nBedankt voor de snelle reactie.\n\nThijs", charset="UTF-8", cte="quoted-printable"),
# 58 Outlook desktop, Japanese, ISO-2022-JP
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", lang="ja", lang_word="JA", lang_tag="ja-JP",
 cust=("中村 大輔", "daisuke.nakamura@jp.example"), us=("Acme サポート", "support@example.com"),
 subject="RE: 請求書の再発行", date="Tue, 5 Mar 2024 11:30:00 +0900", order="ms",
 hdr=[("差出人", "Acme サポート <support@example.com> "), ("送信日時", "2024年3月5日 10:12"), ("宛先", "中村 大輔 <daisuke.nakamura@jp.example>"), ("件名", "請求書の再発行")],
 orig="中村様\n\n請求書を再発行いたしました。\n\nAcme サポート 田中",
 new="田中様\n\n再発行いただいた請求書を受領しました。\nありがとうございました。\n\n中村", charset="iso-2022-jp", cte="7bit", hcharset="iso-2022-jp"),
# 59 Outlook on the web, Russian
dict(client="outlook-web", mid="outlook", layout="outlook-web", lang="ru", lang_tag="ru-RU",
 cust=("Михаил Орлов", "m.orlov@ru.example"), us=("Поддержка Acme", "support@example.com"),
 subject="Re: Подключение домена", date="Tue, 5 Mar 2024 12:50:00 +0300", order="ms",
 hdr=[("От", "Поддержка Acme <support@example.com>"), ("Отправлено", "5 марта 2024 г. 12:12"), ("Кому", "Михаил Орлов <m.orlov@ru.example>"), ("Тема", "Подключение домена")],
 orig="Михаил, добрый день!\n\nДобавьте, пожалуйста, CNAME-запись для домена и сообщите нам.\n\nАнна",
 new="Анна, добрый день!\n\nЗапись добавил.\n\nМихаил", charset="utf-8", cte="base64"),
# 60 Thunderbird, Polish, reply below the quote, signature
dict(client="thunderbird", layout="thunderbird", reply_below=True, lang="pl", cust=("Piotr Wójcik", "piotr.wojcik@pl.example"), us=("Acme Wsparcie", "pomoc@example.com"),
 subject="Re: Limit załączników", date="Tue, 5 Mar 2024 13:20:00 +0100",
 attr="W dniu 5.03.2024 o 13:12, Acme Wsparcie pisze:",
 orig="Dzień dobry,\n\nlimit załączników podnieśliśmy do 50 MB.\n\nPozdrawiamy,\nTomasz",
 new="Dziękuję, duże pliki już przechodzą.\n\nPiotr", sig="Piotr Wójcik\ntel. 600 100 200", charset="UTF-8", cte="8bit"),
# 61 Gmail, Czech
dict(client="gmail", lang="cs", cust=("Lucie Horáková", "lucie.horakova@cz.example"), us=("Acme podpora", "podpora@example.com"),
 subject="Re: Faktura za únor", date="Tue, 5 Mar 2024 10:10:00 +0100",
 attr="út 5. 3. 2024 v 9:12 odesílatel Acme podpora <podpora@example.com> napsal:",
 orig="Dobrý den,\n\nfakturu za únor jsme opravili.\n\nKlára",
 new="Dobrý den,\n\nopravenou fakturu jsem dostala, děkuji.\n\nLucie Horáková", charset="UTF-8", cte="quoted-printable"),
# 62 Outlook desktop, Chinese (Simplified), GB2312
dict(client="outlook-desktop", mid="outlook", layout="outlook-desktop", lang="zh", lang_word="ZH-CN", lang_tag="zh-CN",
 cust=("刘洋", "liu.yang@cn.example"), us=("Acme 客服", "support@example.com"),
 subject="答复: 账号被锁定", date="Tue, 5 Mar 2024 15:20:00 +0800", order="ms",
 hdr=[("发件人", "Acme 客服 <support@example.com> "), ("发送时间", "2024年3月5日 15:12"), ("收件人", "刘洋 <liu.yang@cn.example>"), ("主题", "账号被锁定")],
 orig="刘先生您好：\n\n您的账号已解锁，请重新登录。\n\nAcme 客服 李娜",
 new="李娜您好：\n\n已经可以登录了，谢谢！\n\n刘洋", charset="gb2312", cte="base64", hcharset="gb2312"),
# 63 Proton Mail, French, attribution in English with ordinal date (client language English)
dict(client="proton", layout="proton", lang="fr", cust=("Léa Fontaine", "lea.fontaine@proton.example"), us=("Service client Acme", "support@example.com"),
 subject="Re: Suppression du compte", date="Tue, 05 Mar 2024 11:00:00 +0100",
 attr="On Tuesday, March 5th, 2024 at 10:12, Service client Acme <support@example.com> wrote:",
 orig="Bonjour,\n\nVotre compte sera supprimé sous 48 heures.\n\nCordialement,\nLéa",
 new="Merci pour la confirmation.\n\nLéa Fontaine", charset="utf-8", cte="base64"),
# 64 Yahoo Mail, German
dict(client="yahoo", layout="yahoo", lang="de", cust=("Dieter Krause", "dieter.krause@yahoo.example"), us=("Acme Kundendienst", "kundendienst@example.com"),
 subject="Re: Newsletter abbestellen", date="Tue, 5 Mar 2024 10:25:00 +0100",
 attr="Am Dienstag, 5. März 2024 um 10:12:33 MEZ hat Acme Kundendienst <kundendienst@example.com> Folgendes geschrieben:",
 orig="Hallo Herr Krause,\n\nwir haben Sie vom Newsletter abgemeldet.\n\nViele Grüße\nSabine Krüger",
 new="Danke.\nD. Krause", charset="UTF-8", cte="quoted-printable"),
]


def render(e, i):
    """(MIME entity bytes, gold text) for entry `e` (index `i`)."""
    layout = e.get("layout", e["client"])
    if "html" in e:
        html, plain = e["html"], e["plain"]
    else:
        html, plain = RENDER[layout](e)
    gold = e.get("gold") or e["new"]
    cs = e.get("charset", "UTF-8")
    cte = e.get("cte", "quoted-printable")
    style = {"gmail": "gmail", "apple": "apple", "thunderbird": "thunderbird", "yahoo": "yahoo"}.get(e["client"], "outlook" if e["client"].startswith("outlook") else "generic")
    seed = "%s-%d-html" % (e["client"], i)
    html_part = text_part(html, "html", cs, cte)
    if e.get("related"):
        png = (b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\n")
        img = raw_part("image/png; name=\"image001.png\"", png,
                       [("Content-Description", "image001.png"), ("Content-Disposition", 'inline; filename="image001.png"; size=68'),
                        ("Content-ID", "<image001.png@01DA6F00.2B3C4D50>")], "base64")
        html_part = multipart("related", [html_part, img], boundary(seed + "rel", style), params=' type="text/html";')
    if e.get("html_only"):
        entity = html_part
    else:
        entity = multipart("alternative", [text_part(plain, "plain", cs, cte), html_part], boundary(seed, style))
    if e.get("attach_bounce"):
        entity = multipart("mixed", [entity, raw_part("message/rfc822", ATTACHED_BOUNCE,
                                                      [("Content-Disposition", 'attachment; filename="Undeliverable Your quote request.eml"')])],
                           boundary(seed + "mix", style))
    return entity, gold


ATTACHED_BOUNCE = (
    "From: Microsoft Outlook <postmaster@contoso.example>\r\n"
    "To: Kevin Shaw <kevin.shaw@contoso.example>\r\n"
    "Subject: Undeliverable: Your quote request\r\n"
    "Date: Mon, 4 Mar 2024 16:40:12 +0000\r\n"
    "Message-ID: <b7c1a2f3-44aa-4b2e-9d31-0f1e2d3c4b5a@contoso.example>\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "MIME-Version: 1.0\r\n"
    "Auto-Submitted: auto-replied\r\n\r\n"
    "Your message to sales@example.com couldn't be delivered.\r\n\r\n"
    "sales wasn't found at example.com.\r\n\r\n"
    "Remote Server returned '550 5.1.1 <sales@example.com>: Recipient address rejected: User unknown'\r\n"
)

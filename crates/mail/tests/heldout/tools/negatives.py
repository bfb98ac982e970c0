"""Emails that are not bounces: auto-replies (out of office, vacation,
ticket acknowledgements) and ordinary emails from people and services that
talk about delivery, failure, returns and undeliverable mail. None of them
may be called a bounce. Gold: is_bounce false; kind auto_reply (auto_reply
expected true), human (auto_reply expected false) or notification (an
automated service email; auto_reply not scored)."""

from mime import addr, enc_words, message, multipart, raw_part, text_part

US = "Acme Support <support@example.com>"


def mail(frm, subject, date, body, extra=(), charset="utf-8", cte="quoted-printable", reply=True, seed="", html=None, attach=None, hmode="B", hcs="utf-8"):
    name, email = frm
    dom = email.split("@")[1]
    hs = [("Return-Path", "<%s>" % email),
          ("Received", "from mx.%s (mx.%s [198.51.100.%d])\n\tby mx.example.com (Postfix) with ESMTPS id 4TqN%s\n\tfor <support@example.com>; %s"
           % (dom, dom, 20 + sum(map(ord, seed)) % 200, seed.upper()[:6], date)),
          ("From", addr(name, email, hcs, hmode)), ("To", US), ("Subject", enc_words(subject, hcs, hmode)), ("Date", date),
          ("Message-ID", "<%s.%s@%s>" % (seed, "20240305", dom))]
    if reply:
        hs += [("In-Reply-To", "<o%s@mail.example.com>" % seed), ("References", "<o%s@mail.example.com>" % seed)]
    hs += list(extra)
    hs.append(("MIME-Version", "1.0"))
    entity = text_part(body, "plain", charset, cte)
    if html:
        entity = multipart("alternative", [entity, text_part(html, "html", charset, cte)], "alt_" + seed)
    if attach:
        entity = multipart("mixed", [entity, attach], "mix_" + seed)
    return message(hs, entity, True)


def ooo_exchange(frm, subject_prefix, subject, body, lang, seed, charset="utf-8", cte="quoted-printable"):
    extra = [("Thread-Topic", enc_words(subject)), ("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All"),
             ("X-MS-Exchange-Inbox-Rules-Loop", frm[1]), ("Content-Language", lang), ("X-MS-Exchange-Organization-AutoReply", "OOF")]
    return mail(frm, "%s %s" % (subject_prefix, subject), "Tue, 5 Mar 2024 10:13:02 +0000", body, extra, charset, cte, seed=seed)


def rec(kind, note=None):
    r = dict(is_bounce=False, kind=kind)
    if kind == "auto_reply":
        r["auto_reply"] = True
    elif kind == "human":
        r["auto_reply"] = False
    if note:
        r["note"] = note
    return r


def build():
    out = []

    def add(name, raw, gold):
        out.append((name, raw, gold))

    # --- auto-replies ---------------------------------------------------------------------
    add("ooo-exchange-en", ooo_exchange(("Grace Miller", "grace.miller@globex.example"), "Automatic reply:", "Re: Invoice 4411",
        "Thank you for your email. I'm out of the office until Monday 11 March with limited access to email.\n\nFor urgent matters please contact accounts@globex.example.\n\nGrace", "en-US", "n01"),
        rec("auto_reply"))
    add("ooo-exchange-de", ooo_exchange(("Jürgen Maier", "j.maier@de.example"), "Automatische Antwort:", "AW: Lieferung beschädigt",
        "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 08.03.2024 nicht im Büro und habe keinen Zugriff auf meine E-Mails.\n\nIn dringenden Fällen wenden Sie sich bitte an meine Kollegin Frau Braun (braun@de.example).\n\nMit freundlichen Grüßen\nJürgen Maier", "de-DE", "n02"),
        rec("auto_reply"))
    add("ooo-exchange-fr", ooo_exchange(("Nathalie Blanc", "n.blanc@fr.example"), "Réponse automatique :", "Re: Commande n° 58213",
        "Bonjour,\n\nJe suis absente du bureau jusqu'au 12 mars inclus. Votre message ne sera pas transféré.\nPour toute urgence, merci de contacter le standard au 01 23 45 67 89.\n\nCordialement,\nNathalie Blanc", "fr-FR", "n03"),
        rec("auto_reply"))
    add("ooo-exchange-es", ooo_exchange(("Javier Ortega", "j.ortega@es.example"), "Respuesta automática:", "RE: Error 403",
        "Gracias por su mensaje. Estaré fuera de la oficina hasta el 11 de marzo. Durante mi ausencia, por favor escriba a soporte.interno@es.example.\n\nSaludos,\nJavier", "es-ES", "n04", "iso-8859-1"),
        rec("auto_reply"))
    add("ooo-exchange-nl", ooo_exchange(("Eva de Boer", "eva.deboer@nl.example"), "Automatisch antwoord:", "RE: Koppeling met boekhoudpakket",
        "Dank voor je bericht. Ik ben afwezig tot en met vrijdag 8 maart en lees mijn e-mail niet.\nVoor dringende zaken kun je bellen met 020 123 4567.\n\nMet vriendelijke groet,\nEva de Boer", "nl-NL", "n05"),
        rec("auto_reply"))
    add("ooo-exchange-it", ooo_exchange(("Sara Colombo", "s.colombo@it.example"), "Risposta automatica:", "Re: Fatturazione elettronica SDI",
        "Grazie per il messaggio. Sono fuori ufficio fino all'11 marzo con accesso limitato alla posta.\nPer urgenze contattare amministrazione@it.example.\n\nSara Colombo", "it-IT", "n06"),
        rec("auto_reply"))
    add("ooo-exchange-pl", ooo_exchange(("Anna Nowak", "anna.nowak@pl.example"), "Automatyczna odpowiedź:", "RE: Faktura korygująca",
        "Dzień dobry,\n\ndo 11 marca przebywam na urlopie. W pilnych sprawach proszę o kontakt z biuro@pl.example.\n\nPozdrawiam\nAnna Nowak", "pl-PL", "n07", "iso-8859-2"),
        rec("auto_reply"))
    add("ooo-exchange-sv", ooo_exchange(("Lena Ek", "lena.ek@se.example"), "Automatiskt svar:", "SV: Fel i lönefilen",
        "Hej,\n\nJag är på semester till och med den 10 mars. Vid brådskande ärenden, kontakta ekonomi@se.example.\n\nHälsningar\nLena Ek", "sv-SE", "n08"),
        rec("auto_reply"))
    add("ooo-exchange-pt", ooo_exchange(("Carla Mendes", "carla.mendes@pt.example"), "Resposta automática:", "Re: Alteração de plano",
        "Olá,\n\nEstou ausente até 11 de março, com acesso limitado ao e-mail. Em caso de urgência contacte geral@pt.example.\n\nObrigada,\nCarla", "pt-PT", "n09"),
        rec("auto_reply"))
    add("ooo-exchange-ru", ooo_exchange(("Елена Кузнецова", "e.kuznetsova@ru.example"), "Автоматический ответ:", "RE: Счёт на оплату",
        "Здравствуйте!\n\nЯ в отпуске до 11 марта. По срочным вопросам обращайтесь, пожалуйста, по адресу office@ru.example.\n\nС уважением,\nЕлена Кузнецова", "ru-RU", "n10", "koi8-r"),
        rec("auto_reply"))
    add("ooo-exchange-ja", ooo_exchange(("山田 太郎", "taro.yamada@jp.example"), "自動応答:", "RE: ライセンスの追加",
        "お問い合わせありがとうございます。\n3月11日まで不在のため、返信が遅れます。\nお急ぎの場合は info@jp.example までご連絡ください。\n\n山田", "ja-JP", "n11", "iso-2022-jp", "7bit"),
        rec("auto_reply"))
    add("ooo-exchange-zh", ooo_exchange(("张敏", "zhang.min@cn.example"), "自动答复:", "Re: 退款什么时候到账？",
        "您好，我3月11日前休假，期间不能及时回复邮件。如有急事请联系 service@cn.example。\n\n张敏", "zh-CN", "n12", "gb2312", "base64"),
        rec("auto_reply"))
    add("ooo-exchange-tr", ooo_exchange(("Can Öztürk", "can.ozturk@tr.example"), "Otomatik yanıt:", "Re: Aboneliğimi iptal etmek istiyorum",
        "Merhaba,\n\n11 Mart'a kadar izindeyim. Acil durumlarda destek@tr.example adresine yazabilirsiniz.\n\nSaygılarımla,\nCan Öztürk", "tr-TR", "n13"),
        rec("auto_reply"))
    add("ooo-exchange-cs", ooo_exchange(("Martin Kučera", "martin.kucera@cz.example"), "Automatická odpověď:", "RE: Přístup pro nového kolegu",
        "Dobrý den,\n\ndo 11. 3. jsem mimo kancelář. V naléhavých případech kontaktujte prosím kancelar@cz.example.\n\nS pozdravem\nMartin Kučera", "cs-CZ", "n14", "windows-1250"),
        rec("auto_reply"))
    add("vacation-gmail", mail(("Ben Taylor", "ben.taylor@example.net"), "Away until March 11", "Tue, 5 Mar 2024 10:13:10 +0000",
        "Hi, I'm travelling until March 11 and will reply when I'm back. Thanks for your patience!\n\nBen",
        [("Auto-Submitted", "auto-replied")], seed="n15"), rec("auto_reply"))
    add("vacation-sieve", mail(("Anja Krause", "anja.krause@example.org"), "Auto: Re: Passwort zurücksetzen funktioniert nicht", "Tue, 05 Mar 2024 10:13:20 +0100",
        "Ich bin bis zum 8. März im Urlaub und lese meine E-Mails erst danach.\n",
        [("Auto-Submitted", "auto-replied (vacation)"), ("Precedence", "bulk")], seed="n16", cte="8bit"), rec("auto_reply"))
    add("vacation-unix", mail(("Hiro Sato", "hiro@lab.example.org"), "away from my mail", "Tue, 5 Mar 2024 10:13:30 +0100",
        "I will not be reading my mail for a while. Your mail regarding \"Re: IMAP IDLE disconnects\"\nwill be read when I return.\n",
        [("Precedence", "bulk")], seed="n17", charset="us-ascii", cte="7bit"), rec("auto_reply"))
    add("ooo-notes", mail(("Maria Keller", "maria.keller@initech.example"), "Maria Keller ist außer Haus.", "Tue, 5 Mar 2024 10:13:40 +0100",
        "Ich werde ab  05.03.2024 nicht im Büro sein. Ich kehre zurück am 11.03.2024.\n\nIch werde Ihre Nachricht nach meiner Rückkehr beantworten.\nIn dringenden Fällen wenden Sie sich bitte an Herrn Vogt.\n",
        [("Auto-Submitted", "auto-generated"), ("X-Mailer", "Lotus Notes Release 9.0.1FP10 January 22, 2018")], seed="n18", charset="ISO-8859-1"), rec("auto_reply"))
    add("ack-zendesk", mail(("Globex Help Center", "help@globex.zendesk.example"), "[Request received] Re: Shared mailbox permissions", "Tue, 5 Mar 2024 10:13:50 +0000",
        "##- Please type your reply above this line -##\n\nYour request (48213) has been received and is being reviewed by our support staff.\n\nTo add additional comments, reply to this email.\n",
        [("Auto-Submitted", "auto-generated"), ("X-Mailer", "Zendesk Mailer"), ("X-Zendesk-From-Account-Id", "a1b2c3")], seed="n19"), rec("auto_reply"))
    add("ack-freshdesk", mail(("Initech Support", "support@initech.freshdesk.example"), "Ticket Received - Re: Certificate renewal", "Tue, 5 Mar 2024 10:14:00 +0000",
        "Dear Acme Support,\n\nWe would like to acknowledge that we have received your request and a ticket has been created.\nA support representative will be reviewing your request and will send you a personal response (usually within 24 hours).\n\nTicket ID: #30551\n\nThank you for your patience.\n\nSincerely,\nInitech Support Team\n",
        [], seed="n20"), rec("auto_reply", note="no RFC 3834 header: an acknowledgement known only by its subject and text"))
    add("ack-otrs", mail(("Contoso Service Desk", "servicedesk@contoso.example"), "[Ticket#2024030510000123] RE: SSO login loop", "Tue, 5 Mar 2024 10:14:10 +0000",
        "This is an automatically generated reply.\n\nYour request has been registered as [Ticket#2024030510000123] and will be processed as soon as possible.\n",
        [("X-Loop", "yes"), ("Precedence", "bulk"), ("Auto-Submitted", "auto-replied"), ("X-Mailer", "OTRS Mail Service")], seed="n21", charset="us-ascii", cte="7bit"), rec("auto_reply"))
    add("ack-rt", mail(("Wilson IT via RT", "rt@wilson.example"), "[wilson.example #12345] AutoReply: Re: IMAP IDLE disconnects", "Tue, 5 Mar 2024 10:14:20 +0000",
        "Greetings,\n\nThis message has been automatically generated in response to the\ncreation of a trouble ticket regarding:\n\t\"Re: IMAP IDLE disconnects\",\na summary of which appears below.\n\nThere is no need to reply to this message right now.  Your ticket has been\nassigned an ID of [wilson.example #12345].\n",
        [("Precedence", "bulk"), ("RT-Ticket", "wilson.example #12345"), ("RT-Originator", "support@example.com"), ("Auto-Submitted", "auto-replied")], seed="n22", charset="us-ascii", cte="7bit"), rec("auto_reply"))
    add("ooo-gmx-de", mail(("Bernd Schulte", "bernd.schulte@gmx.example"), "Abwesenheitsnotiz: Re: Ersatzteil bestellen", "Tue, 5 Mar 2024 10:14:30 +0100",
        "Guten Tag,\n\nvielen Dank für Ihre E-Mail. Ich bin bis zum 12.03. nicht erreichbar.\n\nMit freundlichen Grüßen\nBernd Schulte\n",
        [("Auto-Submitted", "auto-replied")], seed="n23"), rec("auto_reply"))
    add("ooo-subject-undeliverable", ooo_exchange(("Paul Jones", "paul.jones@uk.example"), "Automatic reply:", "Undeliverable parcel - order 5521",
        "Hello,\n\nI am on annual leave until 12 March. Your email has not been forwarded.\n\nRegards,\nPaul", "en-GB", "n24"),
        rec("auto_reply", note="subject of an out-of-office reply contains Undeliverable"))
    add("ooo-text-delivery-failed", mail(("Logistics Team", "logistics@au.example"), "Out of office: Re: Delivery failed", "Tue, 5 Mar 2024 21:14:40 +1100",
        "Thanks for your message. The logistics desk is closed until Monday.\n\nIf your delivery failed or a parcel was returned to sender, please use the tracking page to\nbook a new delivery; undeliverable parcels are kept at the depot for 7 days.\n",
        [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")], seed="n25"), rec("auto_reply"))
    add("vacation-yahoo", mail(("Linda Morgan", "linda.morgan@yahoo.example"), "Re: My account was charged twice", "Tue, 5 Mar 2024 15:34:00 +0000",
        "I'm away with no access to email until March 10. I will respond when I return.\n", [("X-Autoreply", "yes")], seed="n26"), rec("auto_reply"))
    add("vacation-icloud", mail(("Emily Clark", "emily.clark@icloud.example"), "Out of Office", "Tue, 5 Mar 2024 12:14:50 -0500",
        "Hi! I'm on vacation until March 12 with very limited email. I'll get back to you as soon as I can.\n",
        [("Auto-Submitted", "auto-replied")], seed="n27"), rec("auto_reply"))
    add("vacation-zimbra", mail(("Rui Almeida", "rui.almeida@pt.example"), "Ausente: Re: Certificado SSL", "Tue, 05 Mar 2024 14:26:00 +0000",
        "Estou ausente até dia 11 de março. Responderei à sua mensagem logo que possível.\n",
        [("Auto-Submitted", "auto-replied (zimbra; vacation)")], seed="n28"), rec("auto_reply"))
    add("ack-jira", mail(("Globex Service Desk", "jira@globex.atlassian.example"), "SUP-2231 Re: Export to CSV times out", "Tue, 5 Mar 2024 09:15:00 +0000",
        "—-—-—-—\n\nReply above this line.\n\nThanks for contacting us. We've received your request SUP-2231 and will get back to you shortly.\n\nView request · Turn off this request's notifications\n",
        [("Auto-Submitted", "auto-generated"), ("Precedence", "bulk"), ("X-JIRA-FingerPrint", "4c1e8f6b9a")], seed="n29"), rec("auto_reply"))
    add("ooo-multilingual", ooo_exchange(("Ingrid Larsen", "ingrid.larsen@no.example"), "Automatisk svar:", "Re: Faktura",
        "Jeg er på ferie til 11. mars.\n\nI am on holiday until 11 March. For urgent matters please contact post@no.example.\n\nIngrid", "nb-NO", "n30"),
        rec("auto_reply"))

    # --- people and services --------------------------------------------------------------
    add("human-delivery-failed", mail(("Tom Baker", "tbaker@example.net"), "Delivery failed twice", "Tue, 5 Mar 2024 11:00:00 +0000",
        "Hi,\n\nThe courier says the delivery failed twice because the address was wrong, but it's the same\naddress as always: 12 High Street, Leeds. Can you check what's on the label?\n\nThanks,\nTom\n",
        reply=False, seed="n31"), rec("human"))
    add("human-returned-parcel", mail(("Mia Wong", "mia.wong@example.com"), "Returned parcel - when is my refund?", "Tue, 5 Mar 2024 11:10:00 +0000",
        "Hello,\n\nI returned the parcel last Monday (tracking RT123456789GB). It shows as delivered to your\nwarehouse. When will the refund be processed?\n\nMia\n",
        reply=False, seed="n32"), rec("human"))
    add("human-pasted-bounce", mail(("Kevin Shaw", "kevin.shaw@contoso.example"), "Undeliverable email when writing to your sales team", "Tue, 5 Mar 2024 11:20:00 +0000",
        "Hi,\n\nI tried to email sales@example.com and got this back:\n\n  Delivery has failed to these recipients or groups:\n  sales@example.com\n  Remote Server returned '550 5.1.1 <sales@example.com>: Recipient address rejected: User unknown'\n\nIs there another address I should use?\n\nKevin Shaw\nContoso\n",
        reply=False, seed="n33", charset="us-ascii", cte="7bit"), rec("human", note="a person pasting a bounce into their question"))
    add("human-postmaster", mail(("Postmaster Example.org", "postmaster@example.org"), "Your emails to our users are failing SPF", "Tue, 5 Mar 2024 11:30:00 +0000",
        "Hello,\n\nI run the mail server for example.org. Since yesterday your messages to our users fail\nSPF (softfail) and end up in spam; none were rejected or returned yet. Could you check\nwhether you added a new sending IP? It's 203.0.113.99 in our logs.\n\nRegards,\nDan Hughes\nPostmaster, example.org\n",
        reply=False, seed="n34", charset="us-ascii", cte="7bit"), rec("human", note="a person writing from a postmaster address"))
    add("human-reply-returned", mail(("Linda Park", "linda.park@example.org"), "Re: Your refund", "Tue, 5 Mar 2024 11:40:00 +0000",
        "Hi,\n\nMy first reply to you was returned as undeliverable (my work server is down), so I'm\nwriting from my personal address. Yes, please refund to the original card.\n\nLinda\n",
        seed="n35"), rec("human"))
    add("notify-courier", mail(("Speedy Couriers", "noreply@couriers.example"), "Delivery attempt failed - we'll try again tomorrow", "Tue, 5 Mar 2024 18:02:00 +0000",
        "Hello,\n\nWe tried to deliver your parcel 1Z999AA10123456784 today but nobody was home.\nWe will try again tomorrow between 9:00 and 17:00. After three failed attempts the parcel is\nreturned to the sender.\n\nSpeedy Couriers\n",
        reply=False, seed="n36", html="<p>Hello,</p><p>We tried to deliver your parcel <b>1Z999AA10123456784</b> today but nobody was home.</p><p>We will try again tomorrow between 9:00 and 17:00. After three failed attempts the parcel is returned to the sender.</p><p>Speedy Couriers</p>"),
        rec("notification"))
    add("notify-payment-failed", mail(("Billing", "billing@saas.example"), "Payment failed for invoice INV-2024-0311", "Tue, 5 Mar 2024 06:00:00 +0000",
        "Hi Acme Support,\n\nWe couldn't charge your card ending 4242 for invoice INV-2024-0311 (USD 49.00).\nThe payment failed with: card declined. We'll retry in 3 days.\n\nUpdate your payment method: https://saas.example/billing\n",
        [("Precedence", "bulk"), ("List-Unsubscribe", "<https://saas.example/unsub>")], reply=False, seed="n37"), rec("notification"))
    add("human-forwarded-ndr-inline", mail(("Ruth Evans", "ruth.evans@uk.example"), "Fwd: Undeliverable: Re: Invoice query", "Tue, 5 Mar 2024 12:00:00 +0000",
        "Hi,\n\nFYI my reply to you bounced, see below. Is support@example.com still the right address?\n\nRuth\n\n-----Original Message-----\nFrom: Microsoft Outlook <postmaster@uk.example>\nSent: 05 March 2024 11:50\nTo: Ruth Evans <ruth.evans@uk.example>\nSubject: Undeliverable: Re: Invoice query\n\nDelivery has failed to these recipients or groups:\n\nsuppport@example.com\nThe email address you entered couldn't be found.\n",
        reply=False, seed="n38", charset="us-ascii", cte="7bit"), rec("human", note="a person forwarding a bounce's text with a question"))
    add("human-payment-returned", mail(("Oscar Lind", "oscar.lind@se.example"), "Re: Card payment failed, returned to checkout", "Tue, 5 Mar 2024 12:10:00 +0100",
        "Hej,\n\nThe card payment failed again and I was returned to the checkout page. I tried two cards.\nCan I pay by invoice instead?\n\nOscar\n",
        seed="n39"), rec("human"))
    add("notify-returned-to-sender", mail(("Post Office Tracking", "tracking@post.example"), "Your parcel has been returned to sender", "Tue, 5 Mar 2024 08:00:00 +0100",
        "Your parcel CX123456789DE could not be delivered and has been returned to sender.\nReason: address unknown.\n",
        reply=False, seed="n40"), rec("notification"))
    add("human-de-zustellung", mail(("Frank Roth", "frank.roth@de.example"), "Zustellung fehlgeschlagen - Paket zurück an Absender", "Tue, 5 Mar 2024 12:20:00 +0100",
        "Guten Tag,\n\nlaut Sendungsverfolgung ist die Zustellung fehlgeschlagen und das Paket geht zurück an\nden Absender. Ich war aber den ganzen Tag zu Hause! Bitte senden Sie es erneut.\n\nMfG\nFrank Roth\n",
        reply=False, seed="n41", charset="iso-8859-1", hmode="Q", hcs="iso-8859-1"), rec("human"))
    add("human-fr-retour", mail(("Claire Morel", "claire.morel@fr.example"), "Colis retourné à l'expéditeur", "Tue, 5 Mar 2024 12:30:00 +0100",
        "Bonjour,\n\nMon colis a été retourné à l'expéditeur (échec de livraison, destinataire inconnu).\nPouvez-vous le renvoyer à la bonne adresse : 4 rue des Lilas, 69003 Lyon ?\n\nMerci,\nClaire Morel\n",
        reply=False, seed="n42"), rec("human"))
    add("human-es-entrega", mail(("Raúl Castro", "raul.castro@es.example"), "Entrega fallida del pedido 8812", "Tue, 5 Mar 2024 12:40:00 +0100",
        "Hola,\n\nHe recibido un aviso de entrega fallida y de devolución del pedido 8812. ¿Podéis\nvolver a enviarlo? La dirección es correcta.\n\nGracias,\nRaúl\n",
        reply=False, seed="n43", cte="8bit"), rec("human"))
    old = ("From: Acme Shop <shop@example.com>\r\nTo: Nora Fischer <nora@fischer.example>\r\nSubject: Your order confirmation #20931\r\n"
           "Date: Mon, 4 Mar 2024 09:00:00 +0000\r\nMessage-ID: <order20931@shop.example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
           "Thanks for your order #20931. We'll send it within 2 days.\r\n")
    add("human-attached-email", mail(("Nora Fischer", "nora@fischer.example"), "Email not delivered? No shipping confirmation", "Tue, 5 Mar 2024 12:50:00 +0100",
        "Hi,\n\nI never received the shipping confirmation for order #20931, only the order confirmation,\nwhich I attach. Was the delivery email returned to you?\n\nNora\n",
        reply=False, seed="n44", attach=raw_part("message/rfc822", old, [("Content-Disposition", 'attachment; filename="Your order confirmation.eml"')])),
        rec("human", note="a person attaching an earlier email"))
    add("human-delivery-report", mail(("Ahmed Saleh", "ahmed.saleh@ae.example"), "Delivery report for order 7781", "Tue, 5 Mar 2024 13:00:00 +0400",
        "Hello,\n\nCould you send me the delivery report (proof of delivery) for order 7781? Our accounts\nteam needs it; the goods were marked as failed delivery on our side.\n\nThank you,\nAhmed\n",
        reply=False, seed="n45"), rec("human"))
    return out

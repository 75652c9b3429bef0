updated = Mis à jour
subscribe = S’abonner
subscribe-via = S’abonner :
subscriptions = Abonnements
no-entries = Aucun article pour l’instant.
attachment = Pièce jointe
also-in = Aussi dans
list-separator = {", "}
feed-link = flux
failing-since = en échec depuis le { $date } : { $reason }
not-polled = pas encore consulté
readers = { $count ->
    [one] { $count } lecteur
   *[other] { $count } lecteurs
}
merged-by = Rassemblé par { $generator } { $version }.
date-long = %A %-d %B %Y
time = %H:%M
date-time = { $date }, { $time }
failure-timeout = le flux n’a pas répondu à temps
failure-connect = le serveur du flux est injoignable
failure-server_error = le serveur du flux a rencontré une erreur
failure-rate_limited = le serveur du flux demande de revenir plus tard
failure-client_error = l’adresse du flux ne fonctionne plus
failure-gone = le flux a été retiré par son éditeur
failure-too_large = le flux est trop volumineux
failure-refused = l’adresse du flux n’est pas autorisée ici
failure-parse = le flux n’a pas pu être lu
failure-internal = le flux n’a pas pu être consulté

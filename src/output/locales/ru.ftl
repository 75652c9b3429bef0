updated = Обновлено
subscribe = Подписаться
subscribe-via = Подписаться:
subscriptions = Подписки
no-entries = Пока нет записей.
attachment = Вложение
also-in = Также в
list-separator = {", "}
feed-link = лента
failing-since = с { $date } не удаётся получить: { $reason }
not-polled = ещё не загружалась
readers = { $count ->
    [one] { $count } читатель
    [few] { $count } читателя
    [many] { $count } читателей
   *[other] { $count } читателя
}
merged-by = Собрано программой { $generator } { $version }.
date-long = %A, %-d %B %Y г.
time = %H:%M
date-time = { $date }, { $time }
failure-timeout = лента не ответила вовремя
failure-connect = не удалось подключиться к серверу ленты
failure-server_error = на сервере ленты произошла ошибка
failure-rate_limited = сервер ленты просит зайти позже
failure-client_error = адрес ленты больше не работает
failure-gone = лента удалена издателем
failure-too_large = лента слишком большая
failure-refused = адрес ленты здесь не разрешён
failure-parse = не удалось прочитать ленту
failure-internal = не удалось загрузить ленту

updated = آخر تحديث
subscribe = اشترك
subscribe-via = اشترك:
subscriptions = الاشتراكات
no-entries = لا توجد مقالات بعد.
attachment = مرفق
also-in = منشور أيضًا في
list-separator = {"، "}
feed-link = الموجز
failing-since = متعطل منذ { $date }: { $reason }
not-polled = لم يُجلب بعد
readers = { $count ->
    [zero] لا قرّاء
    [one] قارئ واحد
    [two] قارئان
    [few] { $count } قرّاء
    [many] { $count } قارئًا
   *[other] { $count } قارئ
}
merged-by = جمعها { $generator } { $version }.
date-long = %A، %-d %B %Y
time = %H:%M
date-time = { $date }، { $time }
failure-timeout = لم يستجب الموجز في الوقت المحدد
failure-connect = تعذر الوصول إلى خادم الموجز
failure-server_error = حدث خطأ في خادم الموجز
failure-rate_limited = طلب خادم الموجز العودة لاحقًا
failure-client_error = لم يعد عنوان الموجز يعمل
failure-gone = أزال الناشر الموجز
failure-too_large = الموجز كبير جدًا
failure-refused = عنوان الموجز غير مسموح به هنا
failure-parse = تعذرت قراءة الموجز
failure-internal = تعذر جلب الموجز

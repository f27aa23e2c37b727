
ú
x

service.name

frontend

service.version
1.3.0
&
deployment.environment

production

	host.name	
node-03ı

frontend.logger¡	Ïd*6şœ—	INFO*4
2GET /api/v1/orders/25807 200 806ms ip=10.41.52.1162
http.method
GET2
user.idÏÉ2
region
	eu-west-1JŸ(L[ó»G!39»äRœ:Réwè 	Äh+6şœ—DEBUG*2
0cache lookup key=user:92356 hit=false took 159us2
http.method
GET2
user.idÄÑ2
region
	us-east-1JhôIŒM},nÚZ‡û¦Rz¯m³Õã² 	;!+6şœ—DEBUG*2
0cache lookup key=user:74043 hit=false took 651us2
http.method
GET2
user.id»Â2
region
	us-east-1JD…lh,]+/!XæƒŒRÛœ)$g
ğ
t

service.name
cart

service.version
1.2.0
&
deployment.environment

production

	host.name	
node-02÷

cart.logger¡	à*6şœ—	INFO*5
3GET /api/v1/orders/6112 200 888ms ip=10.123.247.1082
http.method
GET2
user.idà/2
region
	eu-west-1JTÛO´høí…K¾PùôRí>„¶Í]{÷Ÿ	¦ë*6şœ—DEBUG*1
/cache lookup key=user:60326 hit=true took 398us2
http.method
GET2
user.id¦×2
region
	eu-west-1J·×&ÒFbÁW¸4<öŠRcÔÌ%Î^…ºŸ	ÿÂ*6şœ—DEBUG*1
/cache lookup key=user:49919 hit=true took 362us2
http.method
GET2
user.idÿ…2
region
	eu-west-1J"m`Êô¡à—Š5V£RJİÅÌ}o
ó
x

service.name

frontend

service.version
1.3.0
&
deployment.environment

production

	host.name	
node-03ö

frontend.logger 	7+6şœ—DEBUG*2
0cache lookup key=user:79757 hit=false took 667us2
http.method
GET2
user.idï2
region
	us-east-1J˜X‚†&[T6ÍRŠåÈ§³R:ÿç	£†ğš	Ú_*6şœ—WARN*-
+slow query on orders took 743 ms rows=245382
http.method
GET2
user.idÚ¿2
region
	us-east-1J
9ÁmRI
¤wcé-fR”.ÅÌcd 	4ü*6şœ—DEBUG*2
0cache lookup key=user:64564 hit=false took 183us2
http.method
GET2
user.id´ø2
region
	us-east-1JzXìYd¾ùq|œüQVR›œ©' K
ğ
t

service.name
cart

service.version
1.2.0
&
deployment.environment

production

	host.name	
node-02÷

cart.loggerŸ	(†*6şœ—DEBUG*1
/cache lookup key=user:34344 hit=true took 274us2
http.method
GET2
user.id¨Œ2
region
	eu-west-1JcØäµâ*-ŠÉú(ê»vÉRÈæ­Ğ"ÈØİ 	g…*6şœ—	INFO*3
1GET /api/v1/orders/34151 200 77ms ip=10.77.236.332
http.method
GET2
user.idçŠ2
region
	us-east-1JÏE§Om—è‚LŞ×ÊW_áR…H-æò5é 	•M*6şœ—DEBUG*2
0cache lookup key=user:19861 hit=false took 743us2
http.method
GET2
user.id•›2
region
	us-east-1J>†#Õöû³;fÊÅÂNß‘RwÌÖ¦\z